package graphapi

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"log/slog"
	"strconv"
)

// Secret is an access token or app secret. Every way of printing it —
// fmt verbs, slog, JSON or text marshalling — gives "[redacted]", so a
// secret that strays into a log line or an error does not leak. Convert
// with string(s) where the real value is needed, and only there.
type Secret string

const redacted = "[redacted]"

// String returns "[redacted]".
func (Secret) String() string { return redacted }

// GoString returns "[redacted]", for %#v.
func (Secret) GoString() string { return redacted }

// LogValue returns "[redacted]", for log/slog.
func (Secret) LogValue() slog.Value { return slog.StringValue(redacted) }

// MarshalText returns "[redacted]", for encoding/json and friends.
func (Secret) MarshalText() ([]byte, error) { return []byte(redacted), nil }

// AppSecretProof returns the hex HMAC-SHA256 of token keyed by appSecret,
// the appsecret_proof parameter of Meta's "Securing Requests" guide.
func AppSecretProof(appSecret, token Secret) string {
	return hmacHex(appSecret, string(token))
}

// AppSecretProofAt returns the timestamped proof of Meta's Login Security
// guide: the HMAC of "token|unixTime". It is sent with appsecret_time and
// expires after five minutes, so make one per call.
func AppSecretProofAt(appSecret, token Secret, unixTime int64) string {
	return hmacHex(appSecret, string(token)+"|"+strconv.FormatInt(unixTime, 10))
}

func hmacHex(key Secret, msg string) string {
	m := hmac.New(sha256.New, []byte(key))
	m.Write([]byte(msg))
	return hex.EncodeToString(m.Sum(nil))
}

// Fingerprint returns a short, non-reversible identifier of a token: the
// first 12 hex digits of its SHA-256. It lets shared state (a Page's pause
// in Redis) say which token was rejected without storing the token. The
// empty token's fingerprint is "".
func Fingerprint(token Secret) string {
	if token == "" {
		return ""
	}
	sum := sha256.Sum256([]byte(token))
	return hex.EncodeToString(sum[:6])
}
