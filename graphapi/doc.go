// Package graphapi speaks the Graph API's Send API: POST
// /{version}/{page-id}/messages, as described by Meta's "Page Messages"
// reference (both revisions: the later one adds the recipient fields
// email, ids and thread_key, reply_to, thread_key in the response, and
// error 230).
//
// The package has four parts, used in this order by a worker:
//
//   - Request and its parts model the body field for field. DecodeRequest
//     refuses keys the API does not define and values of the wrong type;
//     Validate checks Meta's rules (one recipient identifier, message or
//     sender_action, enums, lengths, quick replies, templates). Both report
//     every problem at once as a *ValidationError whose FieldErrors name
//     the JSON path: request.message.quick_replies[3].title.
//   - Client sends one request with a Page access token, adding
//     appsecret_proof when an app secret is configured. It returns a
//     *SendResponse or one of three error types: *Error (Meta answered
//     with an error), *ProtocolError (the answer was unreadable) and
//     *TransportError (there was no answer).
//   - Classify turns any outcome into a Decision: Sent, Backoff, Drop,
//     DeadLetter or Alert, with whether the whole Page should pause,
//     whether it is a rate-limit signal, and Meta's retry hint. The table
//     behind it is Rules.
//   - Usage parses the X-App-Usage, X-Page-Usage and
//     X-Business-Use-Case-Usage headers that say how close a Page is to
//     being throttled.
//
// Secrets (access tokens, the app secret) are of type Secret, which prints
// as "[redacted]" everywhere. The package knows nothing of queues;
// graphapi/graphtest is a fake Graph API for tests.
package graphapi
