package redisopt

import (
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/url"
	"regexp"
	"strings"

	"github.com/hibiken/asynq"
)

// DefaultURL is the Redis that Settings with neither a URL nor sentinel
// addresses name.
const DefaultURL = "redis://127.0.0.1:6379/0"

// SentinelScheme is the URL scheme for Redis Sentinel.
const SentinelScheme = "redis-sentinel"

// DefaultSentinelPort is the port of a sentinel address given without one.
const DefaultSentinelPort = "26379"

// ErrInvalid is wrapped by every error Parse returns: the settings name no
// Redis pagesend can connect to.
var ErrInvalid = errors.New("invalid Redis settings")

// Settings name the Redis pagesend uses: a URL, and explicit settings
// that replace the URL's parts (so a password can live in its own secret
// variable instead of in the URL). The zero value names DefaultURL.
type Settings struct {
	// URL is a redis://, rediss://, redis-socket:// or redis-sentinel://
	// URL (see the package doc). Empty means DefaultURL, or Sentinel when
	// any sentinel setting (SentinelAddrs, MasterName, SentinelUsername,
	// SentinelPassword) is set.
	URL string
	// SentinelAddrs are the sentinels, each "host:port" (port 26379 when
	// left out, IPv6 in brackets). When set they replace the hosts of a
	// redis-sentinel:// URL; with no URL they select Sentinel. Nil or empty
	// means the URL's.
	SentinelAddrs []string
	// MasterName is the name the sentinels monitor the primary under. Empty
	// means the URL's master parameter.
	MasterName string
	// SentinelUsername authenticates to the sentinels (Redis 6.2+ ACLs).
	// Empty means the URL's sentinel_username parameter, if any.
	SentinelUsername string
	// SentinelPassword authenticates to the sentinels. Empty means the
	// URL's sentinel_password parameter, if any.
	SentinelPassword string
	// Username authenticates to Redis as an ACL user. Empty means the
	// URL's user name (redis-sentinel:// only: asynq ignores the user name
	// of the other schemes), else the default user.
	Username string
	// Password authenticates to Redis. Empty means the URL's password, if
	// any.
	Password string
	// TLS turns TLS on, as rediss:// or tls=true would. False leaves the
	// URL's choice.
	TLS bool
}

// sentinelOnly reports whether s has settings that only Sentinel uses.
func (s Settings) sentinelOnly() bool {
	return len(s.SentinelAddrs) > 0 || s.MasterName != "" || s.SentinelUsername != "" || s.SentinelPassword != ""
}

// Parse returns the connection option s names: an asynq.RedisClientOpt for
// redis://, rediss:// and redis-socket://, an asynq.RedisFailoverClientOpt
// for Sentinel. Errors wrap ErrInvalid and never contain a password or any
// part of the URL.
func Parse(s Settings) (asynq.RedisConnOpt, error) {
	raw := s.URL
	if raw == "" {
		raw = DefaultURL
		if s.sentinelOnly() {
			raw = SentinelScheme + "://"
		}
	}
	scheme, _, ok := strings.Cut(raw, "://")
	if !ok {
		return nil, invalid("the URL has no scheme: want redis://, rediss://, redis-socket:// or redis-sentinel://")
	}
	switch strings.ToLower(scheme) {
	case SentinelScheme:
		opt, err := parseSentinelURL(raw[len(scheme)+len("://"):])
		if err != nil {
			return nil, err
		}
		return s.applySentinel(opt)
	case "redis", "rediss", "redis-socket":
		if s.sentinelOnly() {
			return nil, invalid("sentinel settings are set but the URL is %s://: use a redis-sentinel:// URL, or leave the URL unset", strings.ToLower(scheme))
		}
		opt, err := parseAsynqURL(raw)
		if err != nil {
			return nil, err
		}
		return s.applyClient(opt)
	}
	if schemeRE.MatchString(scheme) {
		return nil, invalid("unsupported URL scheme %q: want redis, rediss, redis-socket or redis-sentinel", scheme)
	}
	return nil, invalid("unsupported URL scheme: want redis, rediss, redis-socket or redis-sentinel")
}

// ParseURL returns the connection option a URL alone names:
// Parse(Settings{URL: raw}).
func ParseURL(raw string) (asynq.RedisConnOpt, error) {
	return Parse(Settings{URL: raw})
}

// schemeRE matches what may safely be quoted as a scheme: a malformed URL
// without "//" could otherwise put a password before the "://".
var schemeRE = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9+.-]{0,19}$`)

func invalid(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrInvalid, fmt.Sprintf(format, args...))
}

// parseAsynqURL parses redis://, rediss:// and redis-socket:// as asynq
// does. url.Parse runs first because its errors quote the whole URL, and
// asynq would wrap them.
func parseAsynqURL(raw string) (asynq.RedisClientOpt, error) {
	if _, err := url.Parse(raw); err != nil {
		return asynq.RedisClientOpt{}, invalid("the URL is not valid (percent-encode special characters in the password)")
	}
	opt, err := asynq.ParseRedisURI(raw)
	if err != nil {
		return asynq.RedisClientOpt{}, fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	c, ok := opt.(asynq.RedisClientOpt)
	if !ok {
		return asynq.RedisClientOpt{}, fmt.Errorf("%w: asynq parsed the URL into an unexpected %T", ErrInvalid, opt)
	}
	return c, nil
}

// applyClient lays the explicit settings over a parsed redis://,
// rediss:// or redis-socket:// URL.
func (s Settings) applyClient(o asynq.RedisClientOpt) (asynq.RedisConnOpt, error) {
	if s.Username != "" {
		o.Username = s.Username
	}
	if s.Password != "" {
		o.Password = s.Password
	}
	if s.TLS && o.TLSConfig == nil {
		if o.Network == "unix" {
			return nil, invalid("TLS is not supported over a unix socket (redis-socket://)")
		}
		host, _, err := net.SplitHostPort(o.Addr)
		if err != nil {
			host = o.Addr
		}
		o.TLSConfig = &tls.Config{ServerName: host, MinVersion: tls.VersionTLS12}
	}
	return o, nil
}

// applySentinel lays the explicit settings over a parsed
// redis-sentinel:// URL and checks that the result names a primary.
func (s Settings) applySentinel(u sentinelURL) (asynq.RedisConnOpt, error) {
	opt := u.opt
	if len(s.SentinelAddrs) > 0 {
		opt.SentinelAddrs = make([]string, 0, len(s.SentinelAddrs))
		for i, a := range s.SentinelAddrs {
			addr, err := sentinelAddr(a)
			if err != nil {
				// Explicit addresses hold no secrets: quote them.
				return nil, invalid("sentinel address %d (%q): %v", i+1, a, err)
			}
			opt.SentinelAddrs = append(opt.SentinelAddrs, addr)
		}
	}
	for _, kv := range []struct {
		dst *string
		v   string
	}{
		{&opt.MasterName, s.MasterName},
		{&opt.SentinelUsername, s.SentinelUsername},
		{&opt.SentinelPassword, s.SentinelPassword},
		{&opt.Username, s.Username},
		{&opt.Password, s.Password},
	} {
		if kv.v != "" {
			*kv.dst = kv.v
		}
	}
	if s.TLS && opt.TLSConfig == nil {
		opt.TLSConfig = &tls.Config{MinVersion: tls.VersionTLS12}
	}
	if opt.TLSConfig == nil && u.tlsServerName != "" {
		return nil, invalid("tls_server_name is set but TLS is off: add tls=true")
	}
	if opt.TLSConfig != nil {
		opt.TLSConfig.ServerName = u.tlsServerName
	}
	if len(opt.SentinelAddrs) == 0 {
		return nil, invalid("no sentinel addresses: list them in the URL (redis-sentinel://HOST:PORT,HOST:PORT/DB?master=NAME) or in the sentinel addresses setting")
	}
	if opt.MasterName == "" {
		return nil, invalid("no master name: add ?master=NAME to the redis-sentinel:// URL or set the master name setting")
	}
	return opt, nil
}
