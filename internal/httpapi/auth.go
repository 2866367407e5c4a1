package httpapi

import (
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"strings"

	"github.com/pagesend/pagesend/graphapi"
)

// MinKeyLength is the shortest key accepted, in bytes. A bearer key is a
// password that cannot be rate limited per user; 32 random hex digits
// (`openssl rand -hex 16`) is the least worth having.
const MinKeyLength = 32

// Key is one API key. Secret is what callers send as
// "Authorization: Bearer <secret>"; Name is what logs say was used.
type Key struct {
	// Name identifies the key in logs. ParseKeys names an unnamed key by
	// its fingerprint ("fp:" and 12 hex digits of its SHA-256), which stays
	// the same across restarts so a rotation can be watched.
	Name string
	// Secret is the token itself.
	Secret graphapi.Secret
	// ReadOnly keys may read (GET) but not enqueue or resume (POST): 403.
	ReadOnly bool
}

var keyName = regexp.MustCompile(`^[A-Za-z0-9_.-]{1,64}$`)

// ParseKeys parses a comma-separated list of keys, each "name:secret" or
// a bare secret, as PAGESEND_API_KEYS and PAGESEND_API_READONLY_KEYS hold
// them. Blanks around entries are ignored. A bare secret cannot contain
// ":" (the part before the first ":" is a name). Errors never quote a
// secret.
func ParseKeys(list string, readOnly bool) ([]Key, error) {
	var keys []Key
	for i, entry := range strings.Split(list, ",") {
		entry = strings.TrimSpace(entry)
		if entry == "" {
			continue
		}
		k := Key{Secret: graphapi.Secret(entry), ReadOnly: readOnly}
		if name, secret, ok := strings.Cut(entry, ":"); ok {
			if !keyName.MatchString(name) {
				return nil, fmt.Errorf("key %d: a name is 1 to 64 letters, digits, '.', '_' or '-' (before the first ':')", i+1)
			}
			k.Name, k.Secret = name, graphapi.Secret(secret)
		}
		if len(k.Secret) < MinKeyLength {
			return nil, fmt.Errorf("key %d: %d bytes, at least %d (try: openssl rand -hex 32)", i+1, len(k.Secret), MinKeyLength)
		}
		if strings.ContainsAny(string(k.Secret), " \t\r\n") {
			return nil, fmt.Errorf("key %d: contains white space", i+1)
		}
		if k.Name == "" {
			k.Name = "fp:" + graphapi.Fingerprint(k.Secret)
		}
		keys = append(keys, k)
	}
	return keys, nil
}

// scope is what a route needs of a key.
type scope int

const (
	scopeNone  scope = iota // no key needed
	scopeRead               // any key
	scopeWrite              // a key that is not read-only
)

// keyring checks bearer tokens against the configured keys.
type keyring struct {
	keys   []Key
	hashes [][sha256.Size]byte
}

func newKeyring(keys []Key) (*keyring, error) {
	if len(keys) == 0 {
		return nil, errors.New("httpapi: at least one key is required")
	}
	kr := &keyring{keys: keys, hashes: make([][sha256.Size]byte, len(keys))}
	names := map[string]bool{}
	for i, k := range keys {
		if k.Secret == "" || k.Name == "" {
			return nil, fmt.Errorf("httpapi: key %d has no secret or no name", i+1)
		}
		if names[k.Name] {
			return nil, fmt.Errorf("httpapi: two keys are named %q", k.Name)
		}
		names[k.Name] = true
		kr.hashes[i] = sha256.Sum256([]byte(k.Secret))
		for j := range i {
			if kr.hashes[j] == kr.hashes[i] {
				return nil, fmt.Errorf("httpapi: keys %q and %q are the same secret", keys[j].Name, k.Name)
			}
		}
	}
	return kr, nil
}

// find returns the key whose secret is token, or nil. Comparing digests
// makes every comparison the same length, and every key is compared, so
// the time taken says nothing about which key, or how much of one,
// matched.
func (kr *keyring) find(token string) *Key {
	got := sha256.Sum256([]byte(token))
	found := -1
	for i := range kr.hashes {
		if subtle.ConstantTimeCompare(got[:], kr.hashes[i][:]) == 1 {
			found = i
		}
	}
	if found < 0 {
		return nil
	}
	return &kr.keys[found]
}

// bearer returns the token of an "Authorization: Bearer …" header; the
// scheme is case-insensitive (RFC 9110 §11.1).
func bearer(r *http.Request) (string, bool) {
	scheme, token, ok := strings.Cut(r.Header.Get("Authorization"), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "", false
	}
	token = strings.TrimSpace(token)
	return token, token != ""
}

// authorize checks the caller's key against need. It returns the key's
// name (for the log) and true, or answers 401 or 403 and returns false.
// The WWW-Authenticate values follow RFC 6750 §3.
func (a *API) authorize(w http.ResponseWriter, r *http.Request, need scope) (string, bool) {
	token, ok := bearer(r)
	if !ok {
		w.Header().Set("WWW-Authenticate", `Bearer realm="pagesend"`)
		writeError(w, http.StatusUnauthorized, codeUnauthorized, "send an API key: Authorization: Bearer <key>")
		return "", false
	}
	k := a.keys.find(token)
	if k == nil {
		w.Header().Set("WWW-Authenticate", `Bearer realm="pagesend", error="invalid_token"`)
		writeError(w, http.StatusUnauthorized, codeUnauthorized, "unknown API key")
		return "", false
	}
	if need == scopeWrite && k.ReadOnly {
		w.Header().Set("WWW-Authenticate", `Bearer realm="pagesend", error="insufficient_scope"`)
		writeError(w, http.StatusForbidden, codeForbidden, fmt.Sprintf("key %q is read-only: it may GET, not %s", k.Name, r.Method))
		return k.Name, false
	}
	return k.Name, true
}
