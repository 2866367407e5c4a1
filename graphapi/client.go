package graphapi

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"time"
	"unicode"
)

// Defaults for ClientOptions.
const (
	DefaultBaseURL = "https://graph.facebook.com"
	// DefaultVersion is the Graph API version calls are pinned to (v25.0,
	// released 18 Feb 2026; versions live at least two years). Unversioned
	// calls use the app dashboard's version, so always pin one.
	DefaultVersion = "v25.0"
	// DefaultTimeout bounds one call, from dialling to the end of the body.
	DefaultTimeout = 20 * time.Second
	// DefaultMaxResponseBytes bounds how much of a response is read. Send
	// API answers are a few hundred bytes.
	DefaultMaxResponseBytes = 1 << 20
)

// ClientOptions configures a Client. The zero value talks to the real
// Graph API at DefaultVersion with DefaultTimeout and no appsecret_proof.
type ClientOptions struct {
	// BaseURL is the Graph API root. Zero means DefaultBaseURL.
	BaseURL string
	// Version is the path version, e.g. "v25.0". Zero means DefaultVersion.
	Version string
	// AppSecret, when set, adds appsecret_proof to every call.
	AppSecret Secret
	// AppSecretTime selects the timestamped proof (appsecret_time) of
	// Meta's Login Security guide instead of the plain one.
	AppSecretTime bool
	// Timeout bounds each call. Zero means DefaultTimeout.
	Timeout time.Duration
	// Transport carries the calls. Zero means a new NewTransport(); share
	// one transport between clients that call the same host.
	Transport http.RoundTripper
	// MaxResponseBytes bounds how much of a body is read. Zero means
	// DefaultMaxResponseBytes.
	MaxResponseBytes int64
	// UserAgent is sent as User-Agent. Zero means "pagesend".
	UserAgent string
	// Now is the clock for appsecret_time. Zero means time.Now.
	Now func() time.Time
}

// Client sends Send API requests. It is safe for concurrent use; make one
// per process and share it.
type Client struct {
	base string
	opts ClientOptions
	http *http.Client
}

// NewTransport returns an http.Transport tuned for many concurrent calls to
// one host: keep-alive, and as many idle connections kept per host as a
// busy worker runs calls at once (net/http keeps only 2 by default, which
// makes every third concurrent call dial and handshake again).
func NewTransport() *http.Transport {
	return &http.Transport{
		Proxy: http.ProxyFromEnvironment,
		DialContext: (&net.Dialer{
			Timeout:   5 * time.Second,
			KeepAlive: 30 * time.Second,
		}).DialContext,
		ForceAttemptHTTP2:     true,
		MaxIdleConns:          512,
		MaxIdleConnsPerHost:   256,
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   5 * time.Second,
		ExpectContinueTimeout: time.Second,
	}
}

// NewClient returns a Client, filling the zero fields of opts with their
// defaults. It fails only on a malformed BaseURL.
func NewClient(opts ClientOptions) (*Client, error) {
	if opts.BaseURL == "" {
		opts.BaseURL = DefaultBaseURL
	}
	if opts.Version == "" {
		opts.Version = DefaultVersion
	}
	if opts.Timeout <= 0 {
		opts.Timeout = DefaultTimeout
	}
	if opts.MaxResponseBytes <= 0 {
		opts.MaxResponseBytes = DefaultMaxResponseBytes
	}
	if opts.UserAgent == "" {
		opts.UserAgent = "pagesend"
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Transport == nil {
		opts.Transport = NewTransport()
	}
	u, err := url.Parse(opts.BaseURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("graphapi: base URL %q is not an absolute http(s) URL", opts.BaseURL)
	}
	return &Client{
		base: strings.TrimRight(opts.BaseURL, "/") + "/" + strings.Trim(opts.Version, "/"),
		opts: opts,
		// Redirects are not followed: the messages edge never redirects,
		// and following one would resend the token to another host.
		http: &http.Client{
			Transport: opts.Transport,
			CheckRedirect: func(*http.Request, []*http.Request) error {
				return http.ErrUseLastResponse
			},
		},
	}, nil
}

// SendResponse is the Send API's answer to a delivered request.
// RecipientID is absent for user_ref and phone_number recipients;
// MessageID is absent for sender actions.
type SendResponse struct {
	RecipientID  string `json:"recipient_id,omitempty"`
	MessageID    string `json:"message_id,omitempty"`
	AttachmentID string `json:"attachment_id,omitempty"`
	ThreadKey    string `json:"thread_key,omitempty"`
	// Usage holds the usage headers of the response.
	Usage Usage `json:"-"`
}

// Send posts req to POST {base}/{version}/{pageID}/messages with token in
// the Authorization header (never in the URL, which proxies and servers
// log). It returns the parsed success, or an error that is a *Error (Graph
// answered with an error), a *ProtocolError (the answer could not be read)
// or a *TransportError (no answer). Pass any of them to Classify.
func (c *Client) Send(ctx context.Context, pageID string, token Secret, req *Request) (*SendResponse, error) {
	if token == "" {
		return nil, ErrNoToken
	}
	if pageID != "me" && !isNumeric(pageID) {
		return nil, fmt.Errorf("graphapi: page id %q is not numeric", truncate(pageID, 40))
	}
	body, err := encodeRequest(req)
	if err != nil {
		return nil, fmt.Errorf("graphapi: encode request: %w", err)
	}

	ctx, cancel := context.WithTimeout(ctx, c.opts.Timeout)
	defer cancel()
	endpoint, proof := c.endpoint(pageID, token)
	hreq, err := http.NewRequestWithContext(ctx, http.MethodPost, endpoint, bytes.NewReader(body))
	if err != nil {
		return nil, fmt.Errorf("graphapi: build request: %w", err)
	}
	hreq.Header.Set("Authorization", "Bearer "+string(token))
	hreq.Header.Set("Content-Type", "application/json")
	hreq.Header.Set("Accept", "application/json")
	hreq.Header.Set("User-Agent", c.opts.UserAgent)

	resp, err := c.http.Do(hreq)
	if err != nil {
		return nil, transportError(ctx, "", c.opts.Timeout, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, c.opts.MaxResponseBytes+1))
	if err != nil {
		return nil, transportError(ctx, "reading response: ", c.opts.Timeout, err)
	}
	return parseResponse(resp, redactSecrets(data, token, proof), c.opts.MaxResponseBytes)
}

// CloseIdleConnections closes the transport's idle connections.
func (c *Client) CloseIdleConnections() { c.http.CloseIdleConnections() }

// endpoint returns the call's URL and the appsecret_proof in it ("" when
// no app secret is configured).
func (c *Client) endpoint(pageID string, token Secret) (string, string) {
	u := c.base + "/" + url.PathEscape(pageID) + "/messages"
	if c.opts.AppSecret == "" {
		return u, ""
	}
	q := url.Values{}
	var proof string
	if c.opts.AppSecretTime {
		t := c.opts.Now().Unix()
		proof = AppSecretProofAt(c.opts.AppSecret, token, t)
		q.Set("appsecret_time", strconv.FormatInt(t, 10))
	} else {
		proof = AppSecretProof(c.opts.AppSecret, token)
	}
	q.Set("appsecret_proof", proof)
	return u + "?" + q.Encode(), proof
}

// encodeRequest marshals without HTML escaping, so "<" stays "<" as the
// producer wrote it.
func encodeRequest(req *Request) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(req); err != nil {
		return nil, err
	}
	return bytes.TrimRight(buf.Bytes(), "\n"), nil
}

// transportError turns a failed round trip into a *TransportError that
// says what happened without the URL (which carries appsecret_proof).
func transportError(ctx context.Context, prefix string, timeout time.Duration, err error) error {
	var uerr *url.Error
	if errors.As(err, &uerr) {
		err = uerr.Err
	}
	te := &TransportError{Err: err}
	var (
		nerr   net.Error
		dnsErr *net.DNSError
	)
	switch {
	case errors.Is(err, context.Canceled) || errors.Is(ctx.Err(), context.Canceled):
		te.Kind, te.Op = TransportCanceled, "cancelled"
	case errors.Is(err, context.DeadlineExceeded) || errors.Is(ctx.Err(), context.DeadlineExceeded) ||
		(errors.As(err, &nerr) && nerr.Timeout()):
		te.Kind, te.Op = TransportTimeout, "timed out after "+timeout.String()
	case errors.Is(err, syscall.ECONNRESET):
		te.Kind, te.Op = TransportReset, "connection reset"
	case errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF):
		te.Kind, te.Op = TransportReset, "connection closed before the response was complete"
	case errors.Is(err, syscall.ECONNREFUSED):
		te.Kind, te.Op = TransportRefused, "connection refused"
	case errors.As(err, &dnsErr):
		te.Kind, te.Op = TransportDNS, "DNS lookup failed"
	default:
		te.Kind, te.Op = TransportOther, "request failed"
	}
	te.Op = prefix + te.Op
	return te
}

// apiErrorBody is Meta's error envelope. Codes are read whether they come
// as numbers or as numeric strings.
type apiErrorBody struct {
	Error *struct {
		Message     string  `json:"message"`
		Type        string  `json:"type"`
		Code        flexInt `json:"code"`
		Subcode     flexInt `json:"error_subcode"`
		UserTitle   string  `json:"error_user_title"`
		UserMsg     string  `json:"error_user_msg"`
		FBTraceID   string  `json:"fbtrace_id"`
		IsTransient bool    `json:"is_transient"`
	} `json:"error"`
}

type flexInt int

func (f *flexInt) UnmarshalJSON(b []byte) error {
	s := strings.Trim(string(b), `"`)
	if s == "" || s == "null" {
		*f = 0
		return nil
	}
	n, err := strconv.Atoi(s)
	if err != nil {
		return fmt.Errorf("code %s is not an integer", b)
	}
	*f = flexInt(n)
	return nil
}

func parseResponse(resp *http.Response, data []byte, limit int64) (*SendResponse, error) {
	usage := ParseUsage(resp.Header)
	retryAfter := parseRetryAfter(resp.Header.Get("Retry-After"), time.Now())
	protoErr := func(reason string) error {
		return &ProtocolError{
			HTTPStatus:  resp.StatusCode,
			ContentType: resp.Header.Get("Content-Type"),
			Reason:      reason,
			Snippet:     snippet(data),
			Usage:       usage,
			RetryAfter:  retryAfter,
		}
	}
	if int64(len(data)) > limit {
		return nil, protoErr(fmt.Sprintf("body over %d bytes", limit))
	}
	trimmed := bytes.TrimSpace(data)
	switch {
	case len(trimmed) == 0:
		return nil, protoErr("empty body")
	case trimmed[0] == '<':
		return nil, protoErr("HTML body")
	case trimmed[0] != '{':
		return nil, protoErr("body is not a JSON object")
	}

	var eb apiErrorBody
	if err := json.Unmarshal(trimmed, &eb); err != nil {
		return nil, protoErr("invalid JSON: " + strings.TrimPrefix(err.Error(), "json: "))
	}
	if e := eb.Error; e != nil {
		return nil, &Error{
			HTTPStatus:  resp.StatusCode,
			Code:        int(e.Code),
			Subcode:     int(e.Subcode),
			Type:        e.Type,
			Message:     e.Message,
			UserTitle:   e.UserTitle,
			UserMsg:     e.UserMsg,
			FBTraceID:   e.FBTraceID,
			IsTransient: e.IsTransient,
			Usage:       usage,
			RetryAfter:  retryAfter,
		}
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return nil, protoErr("JSON without an error object")
	}
	// A 2xx JSON object without an error is a success even without ids:
	// Meta answers a sender action to a user_ref or phone_number recipient
	// with no recipient_id and no message_id.
	var sr SendResponse
	if err := json.Unmarshal(trimmed, &sr); err != nil {
		return nil, protoErr("unexpected success body: " + strings.TrimPrefix(err.Error(), "json: "))
	}
	sr.Usage = usage
	return &sr, nil
}

// tokenShape matches what looks like a Meta access token (they start
// "EA" and run on in base62), for scrubbing ones other than ours.
var tokenShape = regexp.MustCompile(`EA[A-Za-z0-9]{20,}`)

// redactSecrets scrubs the access token and the appsecret_proof from a
// response body before anything is parsed out of it. Meta echoes a
// malformed token in its 190 error message ("Malformed access token
// EAA…"), and a proxy's error page may echo the request URL with its
// proof; either would travel on into logs, task results, the pause state
// and the UI.
func redactSecrets(data []byte, token Secret, proof string) []byte {
	for _, s := range []string{string(token), proof} {
		if len(s) >= 8 && bytes.Contains(data, []byte(s)) {
			data = bytes.ReplaceAll(data, []byte(s), []byte(redacted))
		}
	}
	if tokenShape.Match(data) {
		data = tokenShape.ReplaceAll(data, []byte(redacted))
	}
	return data
}

// parseRetryAfter reads a Retry-After header in seconds or as an HTTP date.
func parseRetryAfter(v string, now time.Time) time.Duration {
	if v == "" {
		return 0
	}
	if s, err := strconv.Atoi(strings.TrimSpace(v)); err == nil {
		if s <= 0 {
			return 0
		}
		return min(time.Duration(s)*time.Second, maxRetryAfter)
	}
	if t, err := http.ParseTime(v); err == nil && t.After(now) {
		return min(t.Sub(now), maxRetryAfter)
	}
	return 0
}

// maxRetryAfter caps a Retry-After hint; anything longer is a broken proxy.
const maxRetryAfter = 24 * time.Hour

// snippet returns the first bytes of a body with anything unprintable
// replaced, for error messages.
func snippet(data []byte) string {
	const n = 80
	s := string(data)
	if len(s) > n {
		s = s[:n]
	}
	return strings.Map(func(r rune) rune {
		if unicode.IsPrint(r) {
			return r
		}
		if unicode.IsSpace(r) {
			return ' '
		}
		return -1
	}, strings.ToValidUTF8(s, ""))
}
