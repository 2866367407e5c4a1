package graphapi

import (
	"bytes"
	"errors"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// addRequestSeeds seeds a fuzz target with the example requests (written as
// Meta's guides write them) and a few broken ones.
func addRequestSeeds(f *testing.F) {
	files, _ := filepath.Glob("testdata/requests/*.json")
	if len(files) == 0 {
		f.Fatal("no seed requests in testdata/requests")
	}
	for _, name := range files {
		data, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	for _, s := range []string{
		``, `null`, `[]`, `{"recipient":`, `{"recipient":{"id":1}}`, `{"message":{"quick_replies":[{},{}]}}`,
		`{"recipient":{"id":"1"},"sender_action":"react","payload":[1]}`,
		`{"recipient":{"id":"1"},"message":{"attachment":{"type":"template","payload":{"template_type":"button","buttons":"x"}}}}`,
		`{"recipient":{"id":"1"},"message":{"attachment":{"type":"image","payload":{"url":{}}}}}`,
	} {
		f.Add([]byte(s))
	}
}

// FuzzDecodeRequest: decoding never panics, every problem has a path under
// "request", and a decoded request survives an encode/decode round trip.
func FuzzDecodeRequest(f *testing.F) {
	addRequestSeeds(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		req, err := DecodeRequest(data)
		if err != nil {
			var ve *ValidationError
			if !errors.As(err, &ve) || len(ve.Problems) == 0 {
				t.Fatalf("error %v is not a non-empty *ValidationError", err)
			}
			for _, p := range ve.Problems {
				if !strings.HasPrefix(p.Path, RootPath) {
					t.Fatalf("problem path %q outside %q", p.Path, RootPath)
				}
			}
			return
		}
		out, err := encodeRequest(req)
		if err != nil {
			t.Fatalf("encode decoded request: %v", err)
		}
		if _, err := DecodeRequest(out); err != nil {
			t.Fatalf("re-decode %s: %v", out, err)
		}
	})
}

// FuzzValidate: validation never panics and is deterministic, and a valid
// request stays valid after an encode/decode round trip.
func FuzzValidate(f *testing.F) {
	addRequestSeeds(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		req, err := DecodeRequest(data)
		if err != nil {
			return
		}
		err1, err2 := req.Validate(), req.Validate()
		if (err1 == nil) != (err2 == nil) || (err1 != nil && err1.Error() != err2.Error()) {
			t.Fatalf("Validate not deterministic: %v vs %v", err1, err2)
		}
		if err1 != nil {
			return
		}
		out, err := encodeRequest(req)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := ParseRequest(out); err != nil {
			t.Fatalf("valid request %s invalid after round trip: %v", out, err)
		}
	})
}

// FuzzParseResponse: any body and status yields a response or one of the
// typed errors, never a panic, and Classify accepts the result.
func FuzzParseResponse(f *testing.F) {
	f.Add(200, []byte(`{"recipient_id":"1","message_id":"m_1"}`))
	f.Add(400, []byte(`{"error":{"message":"x","type":"OAuthException","code":613,"error_subcode":1996,"fbtrace_id":"A"}}`))
	f.Add(400, []byte(`{"error":{"code":"190","error_subcode":"460"}}`))
	f.Add(502, []byte(`<html>bad gateway</html>`))
	f.Add(200, []byte(`{"recipient_id":"1","mess`))
	f.Add(500, []byte(``))
	f.Add(200, []byte("\xff\xfe{"))
	f.Fuzz(func(t *testing.T, status int, body []byte) {
		if status < 100 || status > 999 {
			status = 200
		}
		resp := &http.Response{StatusCode: status, Header: http.Header{}, Body: io.NopCloser(bytes.NewReader(body))}
		sr, err := parseResponse(resp, body, DefaultMaxResponseBytes)
		if (sr == nil) == (err == nil) {
			t.Fatalf("got response %v and error %v", sr, err)
		}
		var (
			ge *Error
			pe *ProtocolError
		)
		if err != nil && !errors.As(err, &ge) && !errors.As(err, &pe) {
			t.Fatalf("untyped error %T: %v", err, err)
		}
		d := Classify(err)
		if (err == nil) != (d.Class == Sent) {
			t.Fatalf("Classify(%v) = %v", err, d.Class)
		}
	})
}

// FuzzParseUsage: usage headers never panic and never give a negative or
// unbounded retry hint.
func FuzzParseUsage(f *testing.F) {
	f.Add(`{"call_count":12,"total_time":4,"total_cputime":3}`, `{"1":[{"type":"messenger","call_count":100,"estimated_time_to_regain_access":7}]}`)
	f.Add(`{"call_count":"x"}`, `{"1":{}}`)
	f.Add(``, `{"1":[{"estimated_time_to_regain_access":1e308}]}`)
	f.Fuzz(func(t *testing.T, app, buc string) {
		h := http.Header{}
		h.Set(HeaderAppUsage, app)
		h.Set(HeaderPageUsage, app)
		h.Set(HeaderBusinessUsage, buc)
		u := ParseUsage(h)
		if d := u.RegainAccessIn(); d < 0 || d > maxRegainMinutes*60e9 {
			t.Fatalf("RegainAccessIn = %v", d)
		}
		_ = u.MaxPercent()
	})
}
