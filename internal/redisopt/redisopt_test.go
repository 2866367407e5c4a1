package redisopt

import (
	"crypto/tls"
	"errors"
	"net/url"
	"reflect"
	"regexp"
	"strings"
	"testing"

	"github.com/hibiken/asynq"
)

// tls12 is the TLS config Parse makes for Sentinel with tls=true.
func tls12(serverName string) *tls.Config {
	return &tls.Config{MinVersion: tls.VersionTLS12, ServerName: serverName}
}

func TestParseSentinel(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		s    Settings
		want asynq.RedisFailoverClientOpt
	}{
		{
			name: "one sentinel, default port, db 0",
			s:    Settings{URL: "redis-sentinel://sentinel?master=pagesend"},
			want: asynq.RedisFailoverClientOpt{MasterName: "pagesend", SentinelAddrs: []string{"sentinel:26379"}},
		},
		{
			name: "db kept (asynq #669)",
			s:    Settings{URL: "redis-sentinel://10.0.0.1:26379/3?master=pagesend"},
			want: asynq.RedisFailoverClientOpt{MasterName: "pagesend", SentinelAddrs: []string{"10.0.0.1:26379"}, DB: 3},
		},
		{
			name: "db with trailing slash",
			s:    Settings{URL: "redis-sentinel://s1/7/?master=m"},
			want: asynq.RedisFailoverClientOpt{MasterName: "m", SentinelAddrs: []string{"s1:26379"}, DB: 7},
		},
		{
			name: "empty path",
			s:    Settings{URL: "redis-sentinel://s1/?master=m"},
			want: asynq.RedisFailoverClientOpt{MasterName: "m", SentinelAddrs: []string{"s1:26379"}},
		},
		{
			name: "three sentinels, IPv6 in brackets",
			s:    Settings{URL: "redis-sentinel://s1:26379,s2:26380,[::1]:26381,[fe80::1]/2?master=pagesend"},
			want: asynq.RedisFailoverClientOpt{MasterName: "pagesend", SentinelAddrs: []string{"s1:26379", "s2:26380", "[::1]:26381", "[fe80::1]:26379"}, DB: 2},
		},
		{
			name: "password in userinfo is Redis's",
			s:    Settings{URL: "redis-sentinel://:s3cret@s1,s2/1?master=pagesend"},
			want: asynq.RedisFailoverClientOpt{MasterName: "pagesend", SentinelAddrs: []string{"s1:26379", "s2:26379"}, Password: "s3cret", DB: 1},
		},
		{
			name: "ACL user and percent-encoded password",
			s:    Settings{URL: "redis-sentinel://app:p%40ss%2Fw%3Ard%25@s1?master=pagesend"},
			want: asynq.RedisFailoverClientOpt{MasterName: "pagesend", SentinelAddrs: []string{"s1:26379"}, Username: "app", Password: "p@ss/w:rd%"},
		},
		{
			name: "unescaped @ in the password: the last @ ends it",
			s:    Settings{URL: "redis-sentinel://:p@ss@s1?master=pagesend"},
			want: asynq.RedisFailoverClientOpt{MasterName: "pagesend", SentinelAddrs: []string{"s1:26379"}, Password: "p@ss"},
		},
		{
			name: "sentinel credentials",
			s:    Settings{URL: "redis-sentinel://:rpw@s1?master=pagesend&sentinel_username=sen&sentinel_password=s%26pw"},
			want: asynq.RedisFailoverClientOpt{MasterName: "pagesend", SentinelAddrs: []string{"s1:26379"}, Password: "rpw", SentinelUsername: "sen", SentinelPassword: "s&pw"},
		},
		{
			name: "tls",
			s:    Settings{URL: "redis-sentinel://s1/0?master=pagesend&tls=true"},
			want: asynq.RedisFailoverClientOpt{MasterName: "pagesend", SentinelAddrs: []string{"s1:26379"}, TLSConfig: tls12("")},
		},
		{
			name: "tls with server name",
			s:    Settings{URL: "redis-sentinel://10.0.0.1?master=pagesend&tls=1&tls_server_name=redis.internal"},
			want: asynq.RedisFailoverClientOpt{MasterName: "pagesend", SentinelAddrs: []string{"10.0.0.1:26379"}, TLSConfig: tls12("redis.internal")},
		},
		{
			name: "tls=false",
			s:    Settings{URL: "redis-sentinel://s1?master=pagesend&tls=false"},
			want: asynq.RedisFailoverClientOpt{MasterName: "pagesend", SentinelAddrs: []string{"s1:26379"}},
		},
		{
			name: "scheme in upper case",
			s:    Settings{URL: "Redis-Sentinel://s1?master=pagesend"},
			want: asynq.RedisFailoverClientOpt{MasterName: "pagesend", SentinelAddrs: []string{"s1:26379"}},
		},
		{
			name: "explicit settings alone",
			s:    Settings{SentinelAddrs: []string{"s1", " s2:26380"}, MasterName: "pagesend", SentinelPassword: "spw", Username: "app", Password: "rpw", TLS: true},
			want: asynq.RedisFailoverClientOpt{MasterName: "pagesend", SentinelAddrs: []string{"s1:26379", "s2:26380"}, SentinelPassword: "spw", Username: "app", Password: "rpw", TLSConfig: tls12("")},
		},
		{
			name: "explicit settings replace the URL's",
			s: Settings{
				URL:           "redis-sentinel://u:old@old1,old2/4?master=old&sentinel_username=x&sentinel_password=old",
				SentinelAddrs: []string{"new1:1"}, MasterName: "new", SentinelUsername: "y", SentinelPassword: "new", Username: "v", Password: "new",
			},
			want: asynq.RedisFailoverClientOpt{MasterName: "new", SentinelAddrs: []string{"new1:1"}, SentinelUsername: "y", SentinelPassword: "new", Username: "v", Password: "new", DB: 4},
		},
		{
			name: "URL without hosts, explicit sentinels",
			s:    Settings{URL: "redis-sentinel:///5?master=pagesend", SentinelAddrs: []string{"s1"}},
			want: asynq.RedisFailoverClientOpt{MasterName: "pagesend", SentinelAddrs: []string{"s1:26379"}, DB: 5},
		},
		{
			name: "explicit TLS keeps the URL's server name",
			s:    Settings{URL: "redis-sentinel://s1?master=m&tls_server_name=r.internal", TLS: true},
			want: asynq.RedisFailoverClientOpt{MasterName: "m", SentinelAddrs: []string{"s1:26379"}, TLSConfig: tls12("r.internal")},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := Parse(tt.s)
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("Parse =\n %#v\nwant\n %#v", got, tt.want)
			}
		})
	}
}

// TestParseAsynqSchemes checks that redis://, rediss:// and
// redis-socket:// parse exactly as asynq parses them, and that explicit
// settings are laid over the result.
func TestParseAsynqSchemes(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		s    Settings
		// want is applied to asynq's own parse of s.URL (DefaultURL when
		// empty).
		want func(o asynq.RedisClientOpt) asynq.RedisClientOpt
	}{
		{name: "default", s: Settings{}},
		{name: "redis", s: Settings{URL: "redis://10.0.0.1:6380/2"}},
		{name: "redis with password", s: Settings{URL: "redis://:pw@localhost:6379/1"}},
		{name: "redis user is ignored, as asynq does", s: Settings{URL: "redis://app:pw@localhost:6379"}},
		{name: "rediss", s: Settings{URL: "rediss://redis.example.com:6380/0"}},
		{name: "socket", s: Settings{URL: "redis-socket://:pw@/run/redis.sock?db=3"}},
		{
			name: "explicit credentials",
			s:    Settings{URL: "redis://:old@localhost:6379/1", Username: "app", Password: "new"},
			want: func(o asynq.RedisClientOpt) asynq.RedisClientOpt { o.Username, o.Password = "app", "new"; return o },
		},
		{
			name: "explicit TLS",
			s:    Settings{URL: "redis://redis.example.com:6380/0", TLS: true},
			want: func(o asynq.RedisClientOpt) asynq.RedisClientOpt {
				o.TLSConfig = &tls.Config{ServerName: "redis.example.com", MinVersion: tls.VersionTLS12}
				return o
			},
		},
		{
			name: "explicit TLS over rediss keeps asynq's config",
			s:    Settings{URL: "rediss://redis.example.com:6380/0", TLS: true},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			raw := tt.s.URL
			if raw == "" {
				raw = DefaultURL
			}
			base, err := asynq.ParseRedisURI(raw)
			if err != nil {
				t.Fatalf("asynq.ParseRedisURI: %v", err)
			}
			want := base.(asynq.RedisClientOpt)
			if tt.want != nil {
				want = tt.want(want)
			}
			got, err := Parse(tt.s)
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("Parse =\n %#v\nwant\n %#v", got, want)
			}
		})
	}
}

// secret is in every URL of TestParseErrors; no error may show any of it.
const secret = "Hunter2Secret"

func TestParseErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		s    Settings
		want string // in the error
	}{
		{"no scheme", Settings{URL: "127.0.0.1:6379"}, "no scheme"},
		{"unknown scheme", Settings{URL: "mysql://:" + secret + "@db/0"}, `unsupported URL scheme "mysql"`},
		{"password before the scheme", Settings{URL: secret + "@x://h"}, "unsupported URL scheme: want"},
		{"bad escape in a redis URL", Settings{URL: "redis://:" + secret + "%zz@h:6379/0"}, "percent-encode"},
		{"bad db in a redis URL", Settings{URL: "redis://:" + secret + "@h:6379/x"}, "database number"},
		{"sentinel settings with a redis URL", Settings{URL: "redis://:" + secret + "@h:6379/0", SentinelAddrs: []string{"s1"}}, "use a redis-sentinel:// URL"},
		{"master with a redis URL", Settings{URL: "redis://h:6379/0", MasterName: "m"}, "but the URL is redis://"},
		{"TLS over a socket", Settings{URL: "redis-socket://:" + secret + "@/tmp/r.sock", TLS: true}, "unix socket"},
		{"no sentinels", Settings{URL: "redis-sentinel://:" + secret + "@/0?master=m"}, "no sentinel addresses"},
		{"no master", Settings{URL: "redis-sentinel://:" + secret + "@s1:26379/0"}, "no master name"},
		{"master without sentinels", Settings{MasterName: "m", SentinelPassword: secret}, "no sentinel addresses"},
		{"sentinels without master", Settings{SentinelAddrs: []string{"s1"}, Password: secret}, "no master name"},
		{"bad port", Settings{URL: "redis-sentinel://:" + secret + "@s1:port/0?master=m"}, "sentinel 1 of 1"},
		{"port out of range", Settings{URL: "redis-sentinel://s1:1,s2:65536/0?master=m"}, "sentinel 2 of 2 in the redis-sentinel:// URL: the port"},
		{"empty sentinel", Settings{URL: "redis-sentinel://s1,,s2?master=m"}, "sentinel 2 of 3"},
		{"IPv6 without brackets", Settings{URL: "redis-sentinel://::1:26379?master=m"}, "brackets"},
		{"bad db", Settings{URL: "redis-sentinel://s1/one?master=m"}, "must be /DB"},
		{"negative db", Settings{URL: "redis-sentinel://s1/-1?master=m"}, "must be /DB"},
		{"two path segments", Settings{URL: "redis-sentinel://s1/1/2?master=m"}, "must be /DB"},
		{"unknown parameter", Settings{URL: "redis-sentinel://s1?master=m&password=" + secret}, "unknown parameter"},
		{"repeated parameter", Settings{URL: "redis-sentinel://s1?master=m&master=n"}, "gives master more than once"},
		{"bad tls", Settings{URL: "redis-sentinel://s1?master=m&tls=yes"}, "true or false"},
		{"server name without tls", Settings{URL: "redis-sentinel://s1?master=m&tls_server_name=x"}, "add tls=true"},
		{"fragment", Settings{URL: "redis-sentinel://:" + secret + "#x@s1?master=m"}, "fragment"},
		{"bad escape in the password", Settings{URL: "redis-sentinel://:" + secret + "%zz@s1?master=m"}, "bad %-escape"},
		{"bad escape in the user", Settings{URL: "redis-sentinel://" + secret + "%zz:pw@s1?master=m"}, "user name"},
		{"bad escape in the query", Settings{URL: "redis-sentinel://s1?master=m&sentinel_password=" + secret + "%zz"}, "query"},
		// A '/' in an unescaped password moves its tail into the path.
		{"slash in the password", Settings{URL: "redis-sentinel://:Hunter2/" + secret + "@s1/0?master=m"}, "%2F"},
		{"question mark in the password", Settings{URL: "redis-sentinel://:Hunter2?" + secret + "@s1/0?master=m"}, "%3F"},
		{"bad explicit sentinel", Settings{SentinelAddrs: []string{"s1", "s2:x"}, MasterName: "m"}, `sentinel address 2 ("s2:x")`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			opt, err := Parse(tt.s)
			if err == nil {
				t.Fatalf("Parse = %#v, want an error", opt)
			}
			if !errors.Is(err, ErrInvalid) {
				t.Errorf("error %q does not wrap ErrInvalid", err)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q lacks %q", err, tt.want)
			}
			for _, piece := range []string{secret, "Hunter", "Secret"} {
				if strings.Contains(err.Error(), piece) {
					t.Errorf("error %q shows the password (%q)", err, piece)
				}
			}
		})
	}
}

// leakRE matches any 3-character piece of a password built by markPassword.
var leakRE = regexp.MustCompile(`Zq|q.Z`)

// markPassword interleaves p with markers, so that any piece of the
// result longer than two characters contains "Zq" or "q?Z".
func markPassword(p string) string {
	var b strings.Builder
	b.WriteString("Zq")
	for _, r := range p {
		b.WriteRune(r)
		b.WriteString("Zq")
	}
	return b.String()
}

// FuzzSentinelURLPassword checks, for any password, that a correctly
// escaped one parses back unchanged, and that a raw (unescaped) one either
// parses or fails without any piece of it in the error.
func FuzzSentinelURLPassword(f *testing.F) {
	for _, seed := range [][2]string{
		{"plain", "/0?master=m"},
		{"p@ss/w?rd#%", "/0?master=m"},
		{"a:b", "?master=m&tls=true"},
		{"x/1/2", "?master=m"},
		{"?master=x&", ""},
		{"%zz", "/3?master=m&sentinel_password=y"},
		{"[::1]", "?master=m"},
	} {
		f.Add(seed[0], seed[1])
	}
	f.Fuzz(func(t *testing.T, password, tail string) {
		if strings.ContainsAny(tail, "Zq") {
			t.Skip()
		}
		escaped := url.UserPassword("app", password).String()
		opt, err := ParseURL("redis-sentinel://" + escaped + "@s1:26379,s2" + "/0?master=m")
		if err != nil {
			t.Fatalf("escaped password %q: %v", password, err)
		}
		if got := opt.(asynq.RedisFailoverClientOpt).Password; got != password {
			t.Fatalf("escaped password %q parsed as %q", password, got)
		}

		raw := markPassword(password)
		if _, err := ParseURL("redis-sentinel://app:" + raw + "@s1:26379,s2" + tail); err != nil && leakRE.MatchString(err.Error()) {
			t.Fatalf("error shows part of the password %q: %v", raw, err)
		}
	})
}
