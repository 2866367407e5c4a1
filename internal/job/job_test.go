package job

import (
	"strings"
	"testing"
	"time"
)

func TestParseJob(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		wantErr []string
	}{
		{"design example", `{"page_id":"1234567890","idempotency_key":"order-42-shipped","request":{"recipient":{"id":"6789"},"messaging_type":"UPDATE","message":{"text":"Your order shipped"}},"send_at":"2026-11-23T10:00:00Z","priority":"high"}`, nil},
		{"minimal", `{"page_id":"1","request":{"recipient":{"id":"2"},"sender_action":"typing_on"}}`, nil},
		{"unknown job key", `{"page_id":"1","pageid":"1","request":{"recipient":{"id":"2"},"sender_action":"typing_on"}}`, []string{"pageid: unknown field"}},
		{"request problems keep their paths", `{"page_id":"1","request":{"recipient":{"id":"2"},"message":{"text":""}}}`,
			[]string{"request.message: needs one of", "request.messaging_type: required"}},
		{"bad send_at", `{"page_id":"1","send_at":"tomorrow","request":{"recipient":{"id":"2"},"sender_action":"typing_on"}}`, []string{"send_at"}},
		{"no request", `{"page_id":"1"}`, []string{"request: required"}},
		{"key with space", `{"page_id":"1","idempotency_key":"a b","request":{"recipient":{"id":"2"},"sender_action":"typing_on"}}`, []string{"idempotency_key: only printable"}},
		{"long key", `{"page_id":"1","idempotency_key":"` + strings.Repeat("k", 201) + `","request":{"recipient":{"id":"2"},"sender_action":"typing_on"}}`, []string{"idempotency_key: longer than 200"}},
		{"not JSON", `page_id=1`, []string{"invalid JSON"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			j, err := ParseJob([]byte(tt.in))
			if len(tt.wantErr) == 0 {
				if err != nil {
					t.Fatalf("ParseJob: %v", err)
				}
				if j.Queue() == "" {
					t.Error("no queue")
				}
				return
			}
			if err == nil {
				t.Fatal("ParseJob accepted it")
			}
			for _, w := range tt.wantErr {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
		})
	}
}

func TestPayloadRoundTrip(t *testing.T) {
	j, err := ParseJob([]byte(`{"page_id":"1","idempotency_key":"k1","request":{"recipient":{"id":"2"},"messaging_type":"UPDATE","message":{"text":"hi <b>"}}}`))
	if err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)
	data, err := NewPayload(j, now).Encode()
	if err != nil {
		t.Fatal(err)
	}
	p, err := DecodePayload(data)
	if err != nil {
		t.Fatalf("DecodePayload(%s): %v", data, err)
	}
	if p.PageID != "1" || p.IdempotencyKey != "k1" || !p.EnqueuedAt.Equal(now) || p.Request.Message.Text != "hi <b>" {
		t.Errorf("payload = %+v", p)
	}
}

func TestDecodePayloadRefusesBrokenTasks(t *testing.T) {
	for _, in := range []string{
		``, `{`, `null`, `{"v":1}`,
		`{"v":2,"page_id":"1","request":{"recipient":{"id":"2"},"sender_action":"typing_on"}}`,
		`{"v":1,"page_id":"1","request":{"recipient":{"id":"2"},"sender_action":"typing_on"},"token":"x"}`,
	} {
		if _, err := DecodePayload([]byte(in)); err == nil {
			t.Errorf("DecodePayload(%q) accepted it", in)
		}
	}
}

func TestPeekPageID(t *testing.T) {
	for in, want := range map[string]string{
		`{"page_id":"123","request":5}`: "123",
		`{"page_id":"12a"}`:             "",
		`garbage`:                       "",
		`{"page_id":123}`:               "",
	} {
		if got := PeekPageID([]byte(in)); got != want {
			t.Errorf("PeekPageID(%s) = %q, want %q", in, got, want)
		}
	}
}
