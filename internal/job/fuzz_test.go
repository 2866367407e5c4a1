package job

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pagesend/pagesend/graphapi"
)

// seedRequests are graphapi's example requests, as Meta's guides write them.
func seedRequests(f *testing.F) [][]byte {
	f.Helper()
	files, _ := filepath.Glob("../../graphapi/testdata/requests/*.json")
	if len(files) == 0 {
		f.Fatal("no example requests in graphapi/testdata/requests")
	}
	var reqs [][]byte
	for _, name := range files {
		data, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		reqs = append(reqs, bytes.TrimSpace(data))
	}
	return reqs
}

// brokenSeeds are inputs every decoder must refuse, or at least survive.
var brokenSeeds = []string{
	``, ` `, `null`, `true`, `1`, `"x"`, `[]`, `[{}]`, `{`, `{}`, `{} {}`, `{"":1}`,
	`{"page_id":1,"request":{}}`, `{"page_id":"1","request":null}`, `{"page_id":"1","request":[]}`,
	`{"page_id":"1","Request":{"recipient":{"id":"2"},"sender_action":"typing_on"}}`,
	`{"page_id":"1","request":{"recipient":{"id":"2"},"sender_action":"typing_on"},"send_at":"tomorrow"}`,
	`{"page_id":"1","request":{"recipient":{"id":"2"},"sender_action":"typing_on"},"send_at":1}`,
	`{"page_id":"1","request":{"recipient":{"id":"2"},"sender_action":"typing_on"},"priority":"urgent"}`,
	`{"page_id":"1","request":{"recipient":{"id":"2"},"sender_action":"typing_on"},"priority":"HIGH"}`,
	`{"page_id":"1","idempotency_key":"a\u0000b","request":{"recipient":{"id":"2"},"sender_action":"typing_on"}}`,
	`{"page_id":"1","page_id":"x","request":{"recipient":{"id":"2"},"sender_action":"typing_on"}}`,
	`{"page_id":"99999999999999999999999999999999999999999999999999999999999999999999","request":{"recipient":{"id":"2"},"sender_action":"typing_on"}}`,
	`{"v":1,"page_id":"1","request":{"recipient":{"id":"2"},"sender_action":"typing_on"},"enqueued_at":"2026-11-23T10:00:00Z"}`,
	`{"v":"1","page_id":"1","request":{"recipient":{"id":"2"},"sender_action":"typing_on"}}`,
	`{"v":1e400,"page_id":"1"}`,
	`{"v":1,"page_id":"1","request":{"recipient":{"id":"2"},"sender_action":"typing_on"},"access_token":"EAAx"}`,
	"{\"page_id\":\"1\xff\"}",
	`{"page_id":"1","request":{"recipient":{"id":"2"},"message":{"text":"` + strings.Repeat("x", 2001) + `"},"messaging_type":"UPDATE"}}`,
	strings.Repeat(`{"request":`, 200) + strings.Repeat(`}`, 200),
	strings.Repeat(`[`, 10000),
}

// addJobSeeds wraps each example request in job envelopes, and adds the
// broken inputs.
func addJobSeeds(f *testing.F) {
	for _, req := range seedRequests(f) {
		r := string(req)
		f.Add([]byte(`{"page_id":"1234567890","request":` + r + `}`))
		f.Add([]byte(`{"page_id":"1234567890","idempotency_key":"order-42","request":` + r + `,"send_at":"2026-11-23T10:00:00Z","priority":"high"}`))
		f.Add([]byte(`{"page_id":"1","request":` + r + `,"priority":"low","pageid":"2"}`))
	}
	for _, s := range brokenSeeds {
		f.Add([]byte(s))
	}
}

// addPayloadSeeds wraps each example request in a stored payload, and adds
// the broken inputs.
func addPayloadSeeds(f *testing.F) {
	for _, req := range seedRequests(f) {
		r := string(req)
		f.Add([]byte(`{"v":1,"page_id":"1234567890","request":` + r + `,"enqueued_at":"2026-11-23T10:00:00Z"}`))
		f.Add([]byte(`{"v":1,"page_id":"1234567890","idempotency_key":"k-1","request":` + r + `,"enqueued_at":"2026-11-23T10:00:00.123456789+02:00"}`))
		f.Add([]byte(`{"v":2,"page_id":"1","request":` + r + `}`))
	}
	for _, s := range brokenSeeds {
		f.Add([]byte(s))
	}
}

// topLevelKeys returns the keys of the first JSON value in data when it
// is an object, as the decoders see it (they read the first value, then
// look at what follows).
func topLevelKeys(data []byte) []string {
	var obj map[string]json.RawMessage
	if json.NewDecoder(bytes.NewReader(data)).Decode(&obj) != nil {
		return nil
	}
	keys := make([]string, 0, len(obj))
	for k := range obj {
		keys = append(keys, k)
	}
	return keys
}

// rootedAt reports whether path is key or lies under it.
func rootedAt(path, key string) bool {
	return path == key || strings.HasPrefix(path, key+".") || strings.HasPrefix(path, key+"[")
}

// checkProblems fails unless err is a non-empty *graphapi.ValidationError
// whose problems all have a message and a path: the document itself (""),
// or a path under one of the input's top-level keys.
func checkProblems(t *testing.T, data []byte, err error) {
	t.Helper()
	var ve *graphapi.ValidationError
	if !errors.As(err, &ve) || len(ve.Problems) == 0 {
		t.Fatalf("error %v (%T) is not a non-empty *graphapi.ValidationError", err, err)
	}
	keys := topLevelKeys(data)
	for _, p := range ve.Problems {
		if p.Message == "" {
			t.Fatalf("problem at %q has no message", p.Path)
		}
		ok := p.Path == ""
		for _, k := range keys {
			ok = ok || rootedAt(p.Path, k)
		}
		if !ok {
			t.Fatalf("problem %q: %s is not under any key of the input %q", p.Path, p.Message, keys)
		}
	}
}

// checkValidateProblems: Validate's problems name a field of the job.
func checkValidateProblems(t *testing.T, err error) {
	t.Helper()
	var ve *graphapi.ValidationError
	if !errors.As(err, &ve) || len(ve.Problems) == 0 {
		t.Fatalf("Validate error %v (%T) is not a non-empty *graphapi.ValidationError", err, err)
	}
	for _, p := range ve.Problems {
		if p.Message == "" {
			t.Fatalf("problem at %q has no message", p.Path)
		}
		switch {
		case p.Path == "page_id", p.Path == "idempotency_key", p.Path == "priority", rootedAt(p.Path, graphapi.RootPath):
		default:
			t.Fatalf("Validate problem %q: %s has no field path", p.Path, p.Message)
		}
	}
}

// checkPeek: PeekPageID never panics and gives digits or "".
func checkPeek(t *testing.T, data []byte) string {
	t.Helper()
	id := PeekPageID(data)
	if id != "" && (!isDigits(id) || len(id) > 64) {
		t.Fatalf("PeekPageID = %q", id)
	}
	return id
}

// FuzzDecodeJob: decoding and validating never panic; every problem has a
// path; ParseJob agrees with DecodeJob+Validate; and a valid job becomes a
// payload that decodes back to the same Page, key and request.
func FuzzDecodeJob(f *testing.F) {
	addJobSeeds(f)
	enqueuedAt := time.Date(2026, 11, 23, 12, 0, 0, 123456789, time.FixedZone("X", 3600))
	f.Fuzz(func(t *testing.T, data []byte) {
		j, err := DecodeJob(data)
		if err != nil {
			if j != nil {
				t.Fatalf("DecodeJob returned a job and the error %v", err)
			}
			checkProblems(t, data, err)
			if _, perr := ParseJob(data); perr == nil || perr.Error() != err.Error() {
				t.Fatalf("ParseJob: %v; DecodeJob: %v", perr, err)
			}
			return
		}
		verr, verr2 := j.Validate(), j.Validate()
		if (verr == nil) != (verr2 == nil) || (verr != nil && verr.Error() != verr2.Error()) {
			t.Fatalf("Validate not deterministic: %v vs %v", verr, verr2)
		}
		if _, perr := ParseJob(data); (perr == nil) != (verr == nil) {
			t.Fatalf("ParseJob: %v; DecodeJob+Validate: %v", perr, verr)
		}
		if verr != nil {
			checkValidateProblems(t, verr)
			return
		}
		switch q := j.Queue(); q {
		case QueueHigh, QueueDefault, QueueLow:
		default:
			t.Fatalf("valid job has queue %q", q)
		}

		enc, err := NewPayload(j, enqueuedAt).Encode()
		if err != nil {
			t.Fatalf("encode payload of a valid job: %v", err)
		}
		p, err := DecodePayload(enc)
		if err != nil {
			t.Fatalf("payload of a valid job does not decode:\njob: %s\npayload: %s\nerror: %v", data, enc, err)
		}
		if p.V != PayloadVersion || p.PageID != j.PageID || p.IdempotencyKey != j.IdempotencyKey || !p.EnqueuedAt.Equal(enqueuedAt) {
			t.Fatalf("payload %+v from job %+v", p, j)
		}
		want, _ := json.Marshal(j.Request)
		got, _ := json.Marshal(p.Request)
		if !bytes.Equal(want, got) {
			t.Fatalf("request changed in the payload round trip:\nbefore %s\nafter  %s", want, got)
		}
		if id := checkPeek(t, enc); id != j.PageID && len(j.PageID) <= 64 {
			t.Fatalf("PeekPageID of the payload = %q, want %q", id, j.PageID)
		}
	})
}

// FuzzDecodePayload: decoding a stored payload never panics; a refused
// one says why with paths; an accepted one is valid and survives a round
// trip; PeekPageID never panics and gives digits or "", and the payload's
// own Page when the payload decodes.
func FuzzDecodePayload(f *testing.F) {
	addPayloadSeeds(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		id := checkPeek(t, data)
		p, err := DecodePayload(data)
		if err != nil {
			if p != nil {
				t.Fatalf("DecodePayload returned a payload and the error %v", err)
			}
			var ve *graphapi.ValidationError
			if !errors.As(err, &ve) || len(ve.Problems) == 0 {
				t.Fatalf("error %v (%T) is not a non-empty *graphapi.ValidationError", err, err)
			}
			for _, pr := range ve.Problems {
				if pr.Message == "" {
					t.Fatalf("problem at %q has no message", pr.Path)
				}
			}
			return
		}
		if p.V != PayloadVersion || p.Request == nil {
			t.Fatalf("accepted payload %+v", p)
		}
		if err := (&Job{PageID: p.PageID, IdempotencyKey: p.IdempotencyKey, Request: p.Request}).Validate(); err != nil {
			t.Fatalf("accepted payload is not a valid job: %v", err)
		}
		if len(p.PageID) <= 64 && id != p.PageID {
			t.Fatalf("PeekPageID = %q, payload's page_id %q", id, p.PageID)
		}
		enc, err := p.Encode()
		if err != nil {
			t.Fatalf("re-encode: %v", err)
		}
		p2, err := DecodePayload(enc)
		if err != nil {
			t.Fatalf("re-encoded payload does not decode:\n%s\n%v", enc, err)
		}
		if p2.PageID != p.PageID || p2.IdempotencyKey != p.IdempotencyKey || !p2.EnqueuedAt.Equal(p.EnqueuedAt) {
			t.Fatalf("round trip changed the payload: %+v → %+v", p, p2)
		}
	})
}
