package redisopt

import (
	"crypto/tls"
	"errors"
	"net"
	"net/url"
	"strconv"
	"strings"

	"github.com/hibiken/asynq"
)

// sentinelParams are the query parameters a redis-sentinel:// URL accepts.
var sentinelParams = []string{"master", "sentinel_username", "sentinel_password", "tls", "tls_server_name"}

// sentinelURL is a parsed redis-sentinel:// URL.
type sentinelURL struct {
	opt           asynq.RedisFailoverClientOpt
	tlsServerName string
}

// parseSentinelURL parses what follows "redis-sentinel://":
//
//	[USER[:PASSWORD]@]HOST[:PORT][,HOST[:PORT]…][/DB][?PARAMS]
//
// It splits the URL by hand: url.Parse rejects a bracketed IPv6 address
// after the first host, and its errors quote the URL. The hosts may be
// empty, for explicit settings to fill in.
func parseSentinelURL(rest string) (sentinelURL, error) {
	var u sentinelURL
	if strings.Contains(rest, "#") {
		return u, invalid("the redis-sentinel:// URL has a fragment: percent-encode # in passwords as %%23")
	}
	authority, tail := rest, ""
	if i := strings.IndexAny(rest, "/?"); i >= 0 {
		authority, tail = rest[:i], rest[i:]
	}
	// A '/' or '?' in a password ends the authority early; the rest of
	// the password, then '@' and the hosts, land in the path or query.
	hint := ""
	if strings.Contains(tail, "@") {
		hint = " (percent-encode / ? # @ in the password as %2F %3F %23 %40)"
	}
	path, query, _ := strings.Cut(tail, "?")

	hosts := authority
	if i := strings.LastIndex(authority, "@"); i >= 0 {
		user, pass, hasPass := strings.Cut(authority[:i], ":")
		var err error
		if u.opt.Username, err = url.PathUnescape(user); err != nil {
			return u, invalid("the user name in the redis-sentinel:// URL has a bad %%-escape")
		}
		if hasPass {
			if u.opt.Password, err = url.PathUnescape(pass); err != nil {
				return u, invalid("the password in the redis-sentinel:// URL has a bad %%-escape (percent-encode %% as %%25)")
			}
		}
		hosts = authority[i+1:]
	}
	if hosts != "" {
		list := strings.Split(hosts, ",")
		for i, h := range list {
			addr, err := sentinelAddr(h)
			if err != nil {
				return u, invalid("sentinel %d of %d in the redis-sentinel:// URL: %v%s", i+1, len(list), err, hint)
			}
			u.opt.SentinelAddrs = append(u.opt.SentinelAddrs, addr)
		}
	}

	if db := strings.TrimSuffix(strings.TrimPrefix(path, "/"), "/"); db != "" {
		n, err := strconv.Atoi(db)
		if err != nil || n < 0 || strings.Contains(db, "/") {
			return u, invalid("the path of the redis-sentinel:// URL must be /DB, a database number%s", hint)
		}
		u.opt.DB = n
	}

	if err := u.setParams(query, hint); err != nil {
		return u, err
	}
	return u, nil
}

// setParams applies the query parameters.
func (u *sentinelURL) setParams(query, hint string) error {
	q, err := url.ParseQuery(query)
	if err != nil {
		return invalid("the query of the redis-sentinel:// URL is not valid (percent-encode special characters in sentinel_password)%s", hint)
	}
	for k, vs := range q {
		known := false
		for _, p := range sentinelParams {
			known = known || k == p
		}
		if !known {
			// Not quoted: a malformed URL can make part of a password a
			// parameter name.
			return invalid("the redis-sentinel:// URL has an unknown parameter (known: %s)%s", strings.Join(sentinelParams, ", "), hint)
		}
		if len(vs) > 1 {
			return invalid("the redis-sentinel:// URL gives %s more than once", k)
		}
	}
	u.opt.MasterName = q.Get("master")
	u.opt.SentinelUsername = q.Get("sentinel_username")
	u.opt.SentinelPassword = q.Get("sentinel_password")
	u.tlsServerName = q.Get("tls_server_name")
	if v := q.Get("tls"); v != "" {
		on, err := strconv.ParseBool(v)
		if err != nil {
			return invalid("the tls parameter of the redis-sentinel:// URL must be true or false")
		}
		if on {
			u.opt.TLSConfig = &tls.Config{MinVersion: tls.VersionTLS12}
		}
	}
	return nil
}

// sentinelAddr checks one sentinel address and adds the default port if
// it has none. Its errors do not quote the address.
func sentinelAddr(a string) (string, error) {
	a = strings.TrimSpace(a)
	host, port := a, DefaultSentinelPort
	switch {
	case a == "":
		return "", errors.New("empty address")
	case strings.HasPrefix(a, "["):
		if strings.HasSuffix(a, "]") {
			host = a[1 : len(a)-1]
			break
		}
		var err error
		if host, port, err = net.SplitHostPort(a); err != nil {
			return "", errors.New("not [IPv6]:PORT")
		}
	case strings.Count(a, ":") > 1:
		return "", errors.New("an IPv6 address must be in brackets, [::1]:26379")
	case strings.Contains(a, ":"):
		host, port, _ = strings.Cut(a, ":")
	}
	if host == "" || strings.ContainsAny(host, "@/?#[] ") {
		return "", errors.New("not HOST[:PORT]")
	}
	if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
		return "", errors.New("the port is not a number from 1 to 65535")
	}
	return net.JoinHostPort(host, port), nil
}
