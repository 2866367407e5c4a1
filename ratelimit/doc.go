// Package ratelimit decides when a worker may call the Send API for a Page:
// it hands out send permits from per-Page token buckets, and it keeps the
// Page pauses that every worker shares through Redis.
//
// Each Page has two token buckets, chosen by Kind: Text for text, links,
// reactions and stickers, and a slower Media bucket for audio and video,
// because Meta allows 300 calls/s per Page for the first and only 10/s for
// the second (Messenger Platform rate-limiting page). A bucket is a Limit:
// it refills at Rate tokens per second and holds at most Burst. A Limiter
// hands out one token per send. Before each send the worker calls
// Limiter.Reserve with its MaxWait: if a token will exist within MaxWait it
// is taken and the worker sleeps until then (Sleep); if not, nothing is
// taken and Reserve says when a token will exist, so the worker reschedules
// the task for that time and moves on to other work. A worker therefore
// never parks a goroutine longer than MaxWait on a busy Page, and one hot
// Page cannot starve the others. Local keeps the buckets in this process
// with golang.org/x/time/rate; N processes together allow N times the rate.
// A fleet-wide Limiter backed by Redis can replace it behind the same
// interface.
//
// A pause stops every worker from calling Meta for a Page: after a
// throttling error (Meta says calling while throttled extends the
// throttle), a broken or missing token, a policy block, or an operator's
// `pagesend pages pause`. Pauses stores them in Redis, where every worker
// process sees them; a throttle pause carries an Until and vanishes by
// itself, the others last until resumed. When two pauses meet, the one
// that lasts longer wins, so a short throttle never hides a manual or token
// pause.
package ratelimit
