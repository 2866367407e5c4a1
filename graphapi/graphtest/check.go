package graphtest

import (
	"crypto/hmac"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/pagesend/pagesend/graphapi"
)

// proofWindow is how far appsecret_time may be from now: Meta's Login
// Security guide says a timestamped proof expires after five minutes.
const proofWindow = 5 * time.Minute

// Messages of the answers the fake's own checks give, as Meta words them.
const (
	msgUnknownPath = "Unknown path components"
	msgBadToken    = "Invalid OAuth access token - Cannot parse access token"
	msgNoProof     = "API calls from the server require an appsecret_proof argument"
	msgBadProof    = "Invalid appsecret_proof provided in the API argument"
)

// check runs the checks that come before the rate limit — route, token,
// appsecret_proof — filling in what it learns about c. It returns the
// rejection and false when one fails.
func (s *Server) check(r *http.Request, c *Call) (Answer, bool) {
	if a, ok := s.checkRoute(r, c); !ok {
		return a, false
	}
	if a, ok := s.checkToken(r, c); !ok {
		return a, false
	}
	return s.checkProof(r, c)
}

// checkRoute accepts POST /{version}/{page-id}/messages, where the page id
// is numeric or "me".
func (s *Server) checkRoute(r *http.Request, c *Call) (Answer, bool) {
	parts := strings.Split(strings.Trim(r.URL.Path, "/"), "/")
	if len(parts) == 3 {
		c.Version, c.PageID = parts[0], parts[1]
	}
	if r.Method != http.MethodPost || len(parts) != 3 || parts[2] != "messages" ||
		!isVersion(parts[0]) || !(parts[1] == "me" || isDigits(parts[1])) {
		return reject(http.StatusNotFound, 100, 0, typeOAuth, msgUnknownPath), false
	}
	if s.opts.Version != "" && parts[0] != s.opts.Version {
		return reject(http.StatusNotFound, 100, 0, typeOAuth, "Unsupported version: "+parts[0]), false
	}
	return Answer{}, true
}

// checkToken reads the token from the Authorization header (Bearer or
// OAuth, as Meta accepts both) or the access_token parameter, and resolves
// /me to a Page when Tokens is set.
func (s *Server) checkToken(r *http.Request, c *Call) (Answer, bool) {
	c.Token = bearer(r.Header.Get("Authorization"))
	if c.Token == "" {
		c.Token = r.URL.Query().Get("access_token")
	}
	if c.Token == "" {
		return reject(http.StatusBadRequest, 190, 0, typeOAuth, msgBadToken), false
	}
	if s.opts.Tokens == nil {
		return Answer{}, true
	}
	if c.PageID == "me" {
		page, ok := s.byTok[c.Token]
		if !ok {
			return reject(http.StatusBadRequest, 190, 467, typeOAuth, msgBadToken), false
		}
		c.PageID = page
		return Answer{}, true
	}
	want, ok := s.opts.Tokens[c.PageID]
	if !ok {
		return reject(http.StatusBadRequest, 100, 33, typeGraphMethod, "Unsupported post request. Object with ID '"+c.PageID+
			"' does not exist, cannot be loaded due to missing permissions, or does not support this operation"), false
	}
	if c.Token != want {
		return reject(http.StatusBadRequest, 190, 467, typeOAuth, msgBadToken), false
	}
	return Answer{}, true
}

// checkProof demands appsecret_proof when AppSecret is set: the plain HMAC
// of the token, or with appsecret_time the HMAC of "token|time".
func (s *Server) checkProof(r *http.Request, c *Call) (Answer, bool) {
	q := r.URL.Query()
	c.Proof, c.ProofTime = q.Get("appsecret_proof"), q.Get("appsecret_time")
	if s.opts.AppSecret == "" {
		return Answer{}, true
	}
	if c.Proof == "" {
		return reject(http.StatusBadRequest, 100, 0, typeGraphMethod, msgNoProof), false
	}
	secret, token := graphapi.Secret(s.opts.AppSecret), graphapi.Secret(c.Token)
	want := graphapi.AppSecretProof(secret, token)
	if c.ProofTime != "" {
		t, err := strconv.ParseInt(c.ProofTime, 10, 64)
		if err != nil || c.Time.Sub(time.Unix(t, 0)).Abs() > proofWindow {
			return reject(http.StatusBadRequest, 100, 0, typeGraphMethod, msgBadProof), false
		}
		want = graphapi.AppSecretProofAt(secret, token, t)
	}
	if !hmac.Equal([]byte(c.Proof), []byte(want)) {
		return reject(http.StatusBadRequest, 100, 0, typeGraphMethod, msgBadProof), false
	}
	return Answer{}, true
}

func bearer(h string) string {
	scheme, tok, ok := strings.Cut(h, " ")
	if !ok || !(strings.EqualFold(scheme, "Bearer") || strings.EqualFold(scheme, "OAuth")) {
		return ""
	}
	return strings.TrimSpace(tok)
}

// isVersion matches "v25.0".
func isVersion(s string) bool {
	major, minor, ok := strings.Cut(strings.TrimPrefix(s, "v"), ".")
	return ok && len(s) > 0 && s[0] == 'v' && isDigits(major) && isDigits(minor)
}

func isDigits(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// recipientOf returns the value of the first identifier set, in the order
// graphapi validates them; ids are joined with commas.
func recipientOf(req *graphapi.Request) string {
	rc := req.Recipient
	if rc == nil {
		return ""
	}
	for _, v := range []string{
		rc.ID, rc.PhoneNumber, rc.UserRef, rc.CommentID, rc.PostID, rc.PlayerID,
		rc.OneTimeNotifToken, rc.NotificationMessagesToken, rc.LoginID, rc.Email,
		strings.Join(rc.IDs, ","), rc.ThreadKey,
	} {
		if v != "" {
			return v
		}
	}
	return ""
}
