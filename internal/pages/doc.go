// Package pages loads the pages file — which Facebook Pages the worker sends
// for, with what access token, and how fast — and holds it in a Store that
// can be reloaded while the worker runs.
//
// # Model
//
// A Config is an immutable snapshot of the file. Each Page has two token
// buckets: Text, for text and template messages, and Media, for audio and
// video attachments, which Meta throttles far harder: 300 calls/s per Page
// for text but only 10/s for audio and video (Messenger Platform
// rate-limiting page). A Limit is a rate in messages per second and a
// burst (bucket size), the same shape as ratelimit.Limit, so it converts
// directly. Fields a page leaves out take the file's defaults, and pages
// that are not in the file at all get the defaults too, so Limits always
// has an answer.
//
// Tokens come from the file ("access_token") or, better, from an
// environment variable it names ("access_token_env"). A variable that is
// unset or empty is not a load error: the page loads without a token and
// Token reports it missing, so one Page's missing token becomes an alert for
// that Page instead of stopping delivery for all of them.
//
// A Store holds the current Config behind an atomic pointer. Lookups never
// block, and a worker that took a snapshot keeps using it while Reload (on
// SIGHUP, see WatchSIGHUP) swaps in a new one. A reload that fails leaves
// the old Config in force. OnChange callbacks learn what changed, which is
// how the worker lifts token_invalid pauses after a token is rotated and
// retunes its rate limiters.
//
// # Secrets
//
// Tokens are graphapi.Secret values and are never part of an error or a log
// line: Config and Store print as page ids and limits only, under every fmt
// verb and through log/slog, and parse errors name paths in the file, never
// the values found there.
package pages
