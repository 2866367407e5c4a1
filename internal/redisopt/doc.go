// Package redisopt turns pagesend's Redis settings into an
// asynq.RedisConnOpt: a URL, plus optional explicit settings for Redis
// Sentinel (sentinel addresses, master name, sentinel credentials), Redis
// credentials and TLS. Every part of pagesend — asynq's client, server and
// inspector, the rate limiter and the Page pause state — builds its go-redis
// client from the option with MakeRedisClient, so one option connects all
// of them to the same Redis, or to the same Sentinel-managed primary.
//
// # URLs
//
// redis://, rediss:// (TLS) and redis-socket:// are parsed by asynq,
// unchanged (note that asynq ignores the user name of a redis:// URL; set
// Settings.Username for Redis ACL users). redis-sentinel:// is parsed here,
// because asynq 0.26 drops its database number (asynq issue #669), reads
// only one password and has no TLS:
//
//	redis-sentinel://[USER[:PASSWORD]@]HOST[:PORT][,HOST[:PORT]…][/DB][?PARAMS]
//
// The hosts are the sentinels (port 26379 when left out; an IPv6 address
// goes in brackets). USER and PASSWORD authenticate to Redis itself (the
// primary the sentinels name) — unlike asynq and go-redis, which use them
// for the sentinels. PARAMS:
//
//	master=NAME               the master name the sentinels monitor (required)
//	sentinel_username=USER    user for the sentinels (Redis 6.2+ ACLs)
//	sentinel_password=SECRET  password for the sentinels, when they have requirepass
//	tls=true                  TLS to the sentinels and to Redis
//	tls_server_name=NAME      name the certificates must carry (default: each host's own)
//
// Percent-encode reserved characters (@ : / ? # % &) in passwords.
//
// # Secrets
//
// Errors never quote a URL or any part of one: a malformed URL can put a
// password anywhere (a "/" in it moves the rest into the path), so errors
// say what is wrong and where, never with what.
package redisopt
