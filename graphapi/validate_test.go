package graphapi

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// TestValidExamples checks that every example request in testdata (written
// as Meta's guides and sample bots write them) decodes, validates and
// re-encodes to the same JSON value.
func TestValidExamples(t *testing.T) {
	files, err := filepath.Glob("testdata/requests/*.json")
	if err != nil || len(files) == 0 {
		t.Fatalf("no examples: %v", err)
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			data, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			req, err := ParseRequest(data)
			if err != nil {
				t.Fatalf("ParseRequest: %v", err)
			}
			out, err := encodeRequest(req)
			if err != nil {
				t.Fatal(err)
			}
			var in, back any
			if err := json.Unmarshal(data, &in); err != nil {
				t.Fatal(err)
			}
			if err := json.Unmarshal(out, &back); err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(in, back) {
				t.Errorf("re-encoded body differs\n in: %s\nout: %s", data, out)
			}
		})
	}
}

func TestValidateProblems(t *testing.T) {
	long := func(n int) string { return strings.Repeat("é", n) } // 2 bytes, 1 character each
	tests := []struct {
		name string
		body string
		// want maps each expected path to a fragment of its message.
		want map[string]string
	}{
		{"no recipient", `{"messaging_type":"UPDATE","message":{"text":"hi"}}`,
			map[string]string{"request.recipient": "required"}},
		{"no identifier", `{"recipient":{},"messaging_type":"UPDATE","message":{"text":"hi"}}`,
			map[string]string{"request.recipient": "needs exactly one identifier"}},
		{"two identifiers", `{"recipient":{"id":"1","user_ref":"x"},"messaging_type":"UPDATE","message":{"text":"hi"}}`,
			map[string]string{"request.recipient": "has id and user_ref"}},
		{"non-numeric id", `{"recipient":{"id":"abc"},"messaging_type":"UPDATE","message":{"text":"hi"}}`,
			map[string]string{"request.recipient.id": "not a numeric id"}},
		{"non-numeric player id", `{"recipient":{"player_id":"p1"},"messaging_type":"UPDATE","message":{"text":"hi"}}`,
			map[string]string{"request.recipient.player_id": "not a numeric id"}},
		{"name without phone", `{"recipient":{"id":"1","name":{"first_name":"A"}},"messaging_type":"UPDATE","message":{"text":"hi"}}`,
			map[string]string{"request.recipient.name": "only allowed with phone_number"}},
		{"bad phone", `{"recipient":{"phone_number":"call me"},"messaging_type":"UPDATE","message":{"text":"hi"}}`,
			map[string]string{"request.recipient.phone_number": "not a phone number"}},
		{"bad email", `{"recipient":{"email":"nope"},"messaging_type":"UPDATE","message":{"text":"hi"}}`,
			map[string]string{"request.recipient.email": "not an email"}},
		{"empty id in ids", `{"recipient":{"ids":["1",""]},"messaging_type":"UPDATE","message":{"text":"hi"}}`,
			map[string]string{"request.recipient.ids[1]": "empty"}},
		{"neither message nor action", `{"recipient":{"id":"1"},"messaging_type":"UPDATE"}`,
			map[string]string{"request": "needs message or sender_action"}},
		{"message and action", `{"recipient":{"id":"1"},"messaging_type":"UPDATE","message":{"text":"hi"},"sender_action":"typing_on"}`,
			map[string]string{"request.sender_action": "2018014"}},
		{"unknown sender action", `{"recipient":{"id":"1"},"sender_action":"dance"}`,
			map[string]string{"request.sender_action": `"dance" is not one of`}},
		{"react without payload", `{"recipient":{"id":"1"},"sender_action":"REACT"}`,
			map[string]string{"request.payload": "required with sender_action REACT"}},
		{"react without reaction", `{"recipient":{"id":"1"},"sender_action":"react","payload":{"message_id":"m_1"}}`,
			map[string]string{"request.payload.reaction": "required"}},
		{"unreact without message id", `{"recipient":{"id":"1"},"sender_action":"unreact","payload":{}}`,
			map[string]string{"request.payload.message_id": "required"}},
		{"payload with typing", `{"recipient":{"id":"1"},"sender_action":"typing_on","payload":"x"}`,
			map[string]string{"request.payload": "only used with sender_action REACT"}},
		{"react payload number", `{"recipient":{"id":"1"},"sender_action":"react","payload":5}`,
			map[string]string{"request.payload": "got number"}},
		{"missing messaging type", `{"recipient":{"id":"1"},"message":{"text":"hi"}}`,
			map[string]string{"request.messaging_type": "required with a message"}},
		{"bad messaging type", `{"recipient":{"id":"1"},"messaging_type":"PROMO","message":{"text":"hi"}}`,
			map[string]string{"request.messaging_type": `"PROMO" is not one of`}},
		{"tag missing", `{"recipient":{"id":"1"},"messaging_type":"MESSAGE_TAG","message":{"text":"hi"}}`,
			map[string]string{"request.tag": "required when messaging_type is MESSAGE_TAG"}},
		{"tag without MESSAGE_TAG", `{"recipient":{"id":"1"},"messaging_type":"UPDATE","tag":"HUMAN_AGENT","message":{"text":"hi"}}`,
			map[string]string{"request.tag": "only allowed when messaging_type is MESSAGE_TAG"}},
		{"unknown tag", `{"recipient":{"id":"1"},"messaging_type":"message_tag","tag":"SHIPPING_UPDATE","message":{"text":"hi"}}`,
			map[string]string{"request.tag": `"SHIPPING_UPDATE" is not one of`}},
		{"bad notification type", `{"recipient":{"id":"1"},"messaging_type":"UPDATE","notification_type":"LOUD","message":{"text":"hi"}}`,
			map[string]string{"request.notification_type": "is not one of"}},
		{"bad persona", `{"recipient":{"id":"1"},"messaging_type":"UPDATE","persona_id":"alex","message":{"text":"hi"}}`,
			map[string]string{"request.persona_id": "not a numeric id"}},
		{"bad thread control app", `{"recipient":{"id":"1"},"messaging_type":"UPDATE","thread_control":{"app_id":"x"},"message":{"text":"hi"}}`,
			map[string]string{"request.thread_control.app_id": "not a numeric id"}},
		{"empty message", `{"recipient":{"id":"1"},"messaging_type":"UPDATE","message":{}}`,
			map[string]string{"request.message": "needs one of text"}},
		{"text and attachment", `{"recipient":{"id":"1"},"messaging_type":"UPDATE","message":{"text":"hi","attachment":{"type":"image","payload":{"url":"https://e.com/a.png"}}}}`,
			map[string]string{"request.message": "has text and attachment"}},
		{"text too long", `{"recipient":{"id":"1"},"messaging_type":"UPDATE","message":{"text":"` + long(2001) + `"}}`,
			map[string]string{"request.message.text": "2001 characters, at most 2000"}},
		{"dynamic text without text", `{"recipient":{"id":"1"},"messaging_type":"UPDATE","message":{"dynamic_text":{"fallback_text":"x"}}}`,
			map[string]string{"request.message.dynamic_text.text": "required"}},
		{"metadata too long", `{"recipient":{"id":"1"},"messaging_type":"UPDATE","message":{"text":"hi","metadata":"` + long(1001) + `"}}`,
			map[string]string{"request.message.metadata": "1001 characters, at most 1000"}},
		{"quick reply title too long", `{"recipient":{"id":"1"},"messaging_type":"UPDATE","message":{"text":"hi","quick_replies":[
			{"content_type":"text","title":"a","payload":"A"},{"content_type":"text","title":"b","payload":"B"},
			{"content_type":"text","title":"c","payload":"C"},{"content_type":"text","title":"` + strings.Repeat("x", 21) + `","payload":"D"}]}}`,
			map[string]string{"request.message.quick_replies[3].title": "21 characters, at most 20"}},
		{"too many quick replies", `{"recipient":{"id":"1"},"messaging_type":"UPDATE","message":{"text":"hi","quick_replies":[` +
			strings.TrimSuffix(strings.Repeat(`{"content_type":"user_email"},`, 14), ",") + `]}}`,
			map[string]string{"request.message.quick_replies": "14 quick replies, at most 13"}},
		{"text quick reply without title and payload", `{"recipient":{"id":"1"},"messaging_type":"UPDATE","message":{"text":"hi","quick_replies":[{"content_type":"TEXT"}]}}`,
			map[string]string{"request.message.quick_replies[0].title": "required", "request.message.quick_replies[0].payload": "required"}},
		{"quick reply content type", `{"recipient":{"id":"1"},"messaging_type":"UPDATE","message":{"text":"hi","quick_replies":[{"content_type":"button"},{}]}}`,
			map[string]string{"request.message.quick_replies[0].content_type": "is not one of", "request.message.quick_replies[1].content_type": "required"}},
		{"quick reply image url", `{"recipient":{"id":"1"},"messaging_type":"UPDATE","message":{"text":"hi","quick_replies":[{"content_type":"text","title":"a","payload":"b","image_url":"ftp://x/y.png"}]}}`,
			map[string]string{"request.message.quick_replies[0].image_url": "not an absolute http(s) URL"}},
		{"quick reply payload too long", `{"recipient":{"id":"1"},"messaging_type":"UPDATE","message":{"text":"hi","quick_replies":[{"content_type":"text","title":"a","payload":"` + long(1001) + `"}]}}`,
			map[string]string{"request.message.quick_replies[0].payload": "1001 characters, at most 1000"}},
		{"quick reply data", `{"recipient":{"id":"1"},"messaging_type":"UPDATE","message":{"text":"hi","quick_replies":[{"content_type":"p2p_payment","data":{"payment_type":"steal","payment_currency":"dollars","sticker_id":"abc","poll_options":[""]}}]}}`,
			map[string]string{
				"request.message.quick_replies[0].data.payment_type":     "is not one of",
				"request.message.quick_replies[0].data.payment_currency": "ISO 4217",
				"request.message.quick_replies[0].data.sticker_id":       "numeric",
				"request.message.quick_replies[0].data.poll_options[0]":  "empty",
			}},
		{"attachment type", `{"recipient":{"id":"1"},"messaging_type":"UPDATE","message":{"attachment":{"type":"gif","payload":{"url":"https://e.com/a.gif"}}}}`,
			map[string]string{"request.message.attachment.type": `"gif" is not one of`}},
		{"attachment without type", `{"recipient":{"id":"1"},"messaging_type":"UPDATE","message":{"attachment":{"payload":{"url":"https://e.com/a.gif"}}}}`,
			map[string]string{"request.message.attachment.type": "required"}},
		{"image without payload", `{"recipient":{"id":"1"},"messaging_type":"UPDATE","message":{"attachment":{"type":"image"}}}`,
			map[string]string{"request.message.attachment.payload": "required for a image attachment"}},
		{"image url and id", `{"recipient":{"id":"1"},"messaging_type":"UPDATE","message":{"attachment":{"type":"image","payload":{"url":"https://e.com/a.png","attachment_id":"1"}}}}`,
			map[string]string{"request.message.attachment.payload": "has url and attachment_id"}},
		{"image bad url", `{"recipient":{"id":"1"},"messaging_type":"UPDATE","message":{"attachment":{"type":"image","payload":{"url":"/a.png","is_reusable":"yes"}}}}`,
			map[string]string{"request.message.attachment.payload.url": "not an absolute", "request.message.attachment.payload.is_reusable": "true or false"}},
		{"file bad attachment id", `{"recipient":{"id":"1"},"messaging_type":"UPDATE","message":{"attachment":{"type":"file","payload":{"attachment_id":"x1"}}}}`,
			map[string]string{"request.message.attachment.payload.attachment_id": "numeric"}},
		{"empty attachments", `{"recipient":{"id":"1"},"messaging_type":"UPDATE","message":{"attachments":[]}}`,
			map[string]string{"request.message.attachments": "empty"}},
		{"bad entry in attachments", `{"recipient":{"id":"1"},"messaging_type":"UPDATE","message":{"attachments":[{"type":"image","payload":{"url":"https://e.com/a.png"}},{"type":"audio","payload":{}}]}}`,
			map[string]string{"request.message.attachments[1].payload": "needs url or attachment_id"}},
		{"template attachment without type", `{"recipient":{"id":"1"},"messaging_type":"UPDATE","message":{"attachment":{"type":"template","payload":{}}}}`,
			map[string]string{"request.message.attachment.payload.template_type": "required"}},
		{"button template", `{"recipient":{"id":"1"},"messaging_type":"UPDATE","message":{"attachment":{"type":"template","payload":{"template_type":"button","text":"` + long(641) + `","buttons":[
			{"type":"web_url","title":"a"},{"type":"postback","title":"b"},{"type":"web_url","url":"https://e.com","title":"c"},{"type":"phone_number","title":"d","payload":"+15555550100"}]}}}}`,
			map[string]string{
				"request.message.attachment.payload.text":               "641 characters, at most 640",
				"request.message.attachment.payload.buttons":            "4 buttons, at most 3",
				"request.message.attachment.payload.buttons[0].url":     "required for a web_url button",
				"request.message.attachment.payload.buttons[1].payload": "required for a postback button",
			}},
		{"generic template", `{"recipient":{"id":"1"},"messaging_type":"UPDATE","message":{"attachment":{"type":"template","payload":{"template_type":"generic","elements":[{"subtitle":"` + long(81) + `"}]}}}}`,
			map[string]string{
				"request.message.attachment.payload.elements[0].title":    "required",
				"request.message.attachment.payload.elements[0].subtitle": "81 characters, at most 80",
			}},
		{"message template", `{"recipient":{"id":"1"},"messaging_type":"UTILITY","message":{"template":{"language":{},"components":[{"type":"footer","parameters":[{"text":"x","url":"nope"}]}]}}}`,
			map[string]string{
				"request.message.template.name":                             "required",
				"request.message.template.language.code":                    "required",
				"request.message.template.components[0].type":               `"footer" is not one of`,
				"request.message.template.components[0].parameters[0].type": "required",
				"request.message.template.components[0].parameters[0].url":  "not an absolute",
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, err := DecodeRequest([]byte(tt.body))
			if err != nil {
				t.Fatalf("DecodeRequest: %v", err)
			}
			err = req.Validate()
			var ve *ValidationError
			if !errors.As(err, &ve) {
				t.Fatalf("Validate() = %v, want *ValidationError", err)
			}
			got := map[string]string{}
			for _, p := range ve.Problems {
				got[p.Path] += p.Message + " | "
			}
			for path, frag := range tt.want {
				if !strings.Contains(got[path], frag) {
					t.Errorf("problem at %s: got %q, want it to contain %q\nall: %v", path, got[path], frag, err)
				}
			}
			if len(ve.Problems) != len(tt.want) {
				t.Errorf("got %d problems, want %d: %v", len(ve.Problems), len(tt.want), err)
			}
		})
	}
}

func TestValidateBoundaries(t *testing.T) {
	ok := []string{
		// exactly at the limits
		`{"recipient":{"id":"1"},"messaging_type":"UPDATE","message":{"text":"` + strings.Repeat("😀", 2000) + `"}}`,
		`{"recipient":{"id":"1"},"messaging_type":"UPDATE","message":{"text":"hi","quick_replies":[{"content_type":"text","title":"` + strings.Repeat("x", 20) + `","payload":"p"}]}}`,
		`{"recipient":{"id":"1"},"messaging_type":"UPDATE","message":{"text":"hi","quick_replies":[` +
			strings.TrimSuffix(strings.Repeat(`{"content_type":"user_email"},`, 13), ",") + `]}}`,
		// a string payload, as the reference page lists it
		`{"recipient":{"id":"1"},"messaging_type":"UPDATE","message":{"attachment":{"type":"image","payload":"https://e.com/a.png"}}}`,
		// payload types Meta documents no rules for pass through
		`{"recipient":{"id":"1"},"messaging_type":"UPDATE","message":{"attachment":{"type":"like_heart"}}}`,
		`{"recipient":{"id":"1"},"messaging_type":"UPDATE","message":{"attachment":{"type":"template","payload":{"template_type":"media","elements":[{"media_type":"image","url":"https://www.facebook.com/photo.php?fbid=1"}]}}}}`,
		// post_id private reply without messaging_type
		`{"recipient":{"post_id":"1_2"},"message":{"text":"hi"}}`,
		`{"recipient":{"notification_messages_token":"tok"},"message":{"text":"hi"}}`,
	}
	for i, body := range ok {
		if _, err := ParseRequest([]byte(body)); err != nil {
			t.Errorf("case %d: %v", i, err)
		}
	}
}

func TestValidateReportsEveryProblem(t *testing.T) {
	body := `{"recipient":{"id":"x"},"message":{"text":"hi","quick_replies":[{"content_type":"text"}]},"notification_type":"LOUD"}`
	req, err := DecodeRequest([]byte(body))
	if err != nil {
		t.Fatal(err)
	}
	err = req.Validate()
	var ve *ValidationError
	if !errors.As(err, &ve) {
		t.Fatalf("got %v", err)
	}
	if len(ve.Problems) != 5 {
		t.Fatalf("got %d problems, want 5: %v", len(ve.Problems), err)
	}
	if !strings.HasPrefix(err.Error(), "invalid request (5 problems): request.recipient.id:") {
		t.Errorf("message = %q", err)
	}
}
