package graphapi

import (
	"errors"
	"strings"
	"testing"
)

func TestDecodeRequestProblems(t *testing.T) {
	tests := []struct {
		name string
		body string
		want []string // "path: message fragment"
	}{
		{"unknown top-level field", `{"recipient":{"id":"1"},"colour":"red"}`,
			[]string{"request.colour: unknown field"}},
		{"unknown nested fields, all reported", `{"recipient":{"id":"1","psid":"2"},"message":{"text":"hi","quick_replies":[{"content_type":"text"},{"content_type":"text","label":"x"}]}}`,
			[]string{"request.message.quick_replies[1].label: unknown field", "request.recipient.psid: unknown field"}},
		{"wrong case is unknown, with a hint", `{"recipient":{"id":"1"},"message":{"Text":"hi"}}`,
			[]string{`request.message.Text: unknown field (did you mean "text"?)`}},
		{"wrong type", `{"recipient":{"id":1}}`,
			[]string{"request.recipient.id: expected string, got number"}},
		{"wrong type in list", `{"recipient":{"id":"1"},"message":{"quick_replies":{"title":"x"}}}`,
			[]string{"request.message.quick_replies: expected array, got object"}},
		{"not JSON", `{"recipient":`, []string{"request: invalid JSON"}},
		{"two values", `{} {}`, []string{"request: invalid JSON: more than one value"}},
		{"not an object", `[1,2]`, []string{"request: expected object, got array"}},
		{"attachment payload passes through, sticker id any", `{"recipient":{"id":"1"},"message":{"attachment":{"type":"template","payload":{"anything":{"goes":[1]}}},"quick_replies":[{"data":{"bogus":1}}]}}`,
			[]string{"request.message.quick_replies[0].data.bogus: unknown field"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := DecodeRequest([]byte(tt.body))
			var ve *ValidationError
			if !errors.As(err, &ve) {
				t.Fatalf("DecodeRequest() = %v, want *ValidationError", err)
			}
			if len(ve.Problems) != len(tt.want) {
				t.Fatalf("got %d problems, want %d: %v", len(ve.Problems), len(tt.want), err)
			}
			for i, w := range tt.want {
				if got := ve.Problems[i].Error(); !strings.HasPrefix(got, w) {
					t.Errorf("problem %d = %q, want prefix %q", i, got, w)
				}
			}
		})
	}
}

func TestDecodeKeepsRawPayloads(t *testing.T) {
	body := `{"recipient":{"id":"1"},"messaging_type":"UPDATE","message":{"attachment":{"type":"template","payload":{"template_type":"generic","x_future_field":{"a":[1,2]}}}}}`
	req, err := DecodeRequest([]byte(body))
	if err != nil {
		t.Fatal(err)
	}
	if got := string(req.Message.Attachment.Payload); got != `{"template_type":"generic","x_future_field":{"a":[1,2]}}` {
		t.Errorf("payload = %s", got)
	}
}
