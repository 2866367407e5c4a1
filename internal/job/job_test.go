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
		{"sequence", `{"page_id":"1","ordered":false,"requests":[{"recipient":{"id":"2"},"sender_action":"typing_on"},{"recipient":{"id":"2"},"messaging_type":"RESPONSE","message":{"text":"hi"}}]}`, nil},
		{"sequence problems keep their index", `{"page_id":"1","requests":[{"recipient":{"id":"2"},"sender_action":"typing_on"},{"recipient":{"id":"2"},"message":{"text":"hi"}}]}`,
			[]string{"requests[1].messaging_type: required"}},
		{"sequence to two recipients", `{"page_id":"1","requests":[{"recipient":{"id":"2"},"sender_action":"typing_on"},{"recipient":{"id":"3"},"sender_action":"typing_on"}]}`,
			[]string{"requests[1].recipient: differs"}},
		{"request and requests", `{"page_id":"1","request":{"recipient":{"id":"2"},"sender_action":"typing_on"},"requests":[{"recipient":{"id":"2"},"sender_action":"typing_on"}]}`,
			[]string{"requests: give request or requests, not both"}},
		{"empty sequence", `{"page_id":"1","requests":[]}`, []string{"requests: empty"}},
		{"long sequence", `{"page_id":"1","requests":[` + strings.Repeat(`{"recipient":{"id":"2"},"sender_action":"typing_on"},`, 10) + `{"recipient":{"id":"2"},"sender_action":"typing_on"}]}`,
			[]string{"requests: 11 requests, at most 10"}},
		{"ordered not a bool", `{"page_id":"1","ordered":"no","request":{"recipient":{"id":"2"},"sender_action":"typing_on"}}`, []string{"ordered"}},
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

func TestConversation(t *testing.T) {
	mk := func(page, rcpt string, ordered *bool) *Job {
		j, err := ParseJob([]byte(`{"page_id":"` + page + `","request":{"recipient":{"id":"` + rcpt + `"},"sender_action":"typing_on"}}`))
		if err != nil {
			t.Fatal(err)
		}
		j.Ordered = ordered
		return j
	}
	a, b, c := mk("1", "2", nil), mk("1", "3", nil), mk("4", "2", nil)
	if a.Conversation() == b.Conversation() || a.Conversation() == c.Conversation() || a.Conversation() != mk("1", "2", nil).Conversation() {
		t.Errorf("conversations %q %q %q: want one per Page and recipient", a.Conversation(), b.Conversation(), c.Conversation())
	}
	if !strings.HasPrefix(a.Conversation(), "1:") || len(a.Conversation()) != len("1:")+16 {
		t.Errorf("conversation %q", a.Conversation())
	}
	now := time.Now()
	if p := NewPayload(a, now); p.Conv() != a.Conversation() {
		t.Errorf("ordered payload conv %q", p.Conv())
	}
	if p := NewPayload(mk("1", "2", new(bool)), now); p.Conv() != "" {
		t.Errorf("unordered payload conv %q, want none", p.Conv())
	}
	data, _ := NewPayload(a, now).Encode()
	if got, at := PeekConv(data); got != a.Conversation() || !at.Equal(now.UTC()) {
		t.Errorf("PeekConv = %q, %v", got, at)
	}
	// A payload that does not decode (an unknown key) still names its
	// conversation.
	if got, _ := PeekConv([]byte(`{"v":9,"page_id":"1","x":1,"request":{"recipient":{"id":"2"}},"enqueued_at":"2026-01-01T00:00:00Z"}`)); got != a.Conversation() {
		t.Errorf("PeekConv of a broken payload = %q", got)
	}
}
