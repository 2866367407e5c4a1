package graphapi

import (
	"encoding/json"
	"strings"
)

// mediaTypes are the attachment types whose payload names a file by url or
// attachment_id (Saving Assets guide).
var mediaTypes = []string{"IMAGE", "VIDEO", "AUDIO", "FILE"}

// IsAudioVideo reports whether r sends audio or video, which Meta limits to
// 10 calls/s per Page instead of 300 (Messenger Platform rate limits).
func (r *Request) IsAudioVideo() bool {
	if r.Message == nil {
		return false
	}
	isAV := func(a *Attachment) bool {
		return strings.EqualFold(a.Type, "AUDIO") || strings.EqualFold(a.Type, "VIDEO")
	}
	if a := r.Message.Attachment; a != nil && isAV(a) {
		return true
	}
	for i := range r.Message.Attachments {
		if isAV(&r.Message.Attachments[i]) {
			return true
		}
	}
	return false
}

func (a *Attachment) validate(p string, ps *problems) {
	if a.Type == "" {
		ps.add(p+".type", "required: one of %s", strings.Join(AttachmentTypes, ", "))
		return
	}
	checkEnum(ps, p+".type", a.Type, AttachmentTypes)
	pp := p + ".payload"
	kind := jsonKind(a.Payload)
	switch {
	case oneOf(a.Type, mediaTypes):
		switch kind {
		case "":
			ps.add(pp, "required for a %s attachment: {\"url\": …} or {\"attachment_id\": …}", strings.ToLower(a.Type))
		case "object":
			validateMediaPayload(pp, a.Payload, ps)
		case "string":
			checkNonEmptyString(ps, pp, a.Payload)
		default:
			ps.add(pp, "must be an object or a string, got %s", kind)
		}
	case strings.EqualFold(a.Type, "TEMPLATE"):
		if kind != "object" {
			ps.add(pp, "required for a template attachment: an object with template_type")
			return
		}
		validateTemplatePayload(pp, a.Payload, ps)
	default:
		// LOCATION, FALLBACK, REEL, IG_REEL, LIKE_HEART, MEDIA_SHARE: Meta
		// documents no payload rules for sends; pass it through.
		if kind != "" && kind != "object" && kind != "string" {
			ps.add(pp, "must be an object or a string, got %s", kind)
		}
	}
}

// validateMediaPayload checks the keys Meta documents for media
// attachments: exactly one of url and attachment_id, is_reusable a boolean.
// Other keys pass through.
func validateMediaPayload(p string, raw json.RawMessage, ps *problems) {
	var pl map[string]json.RawMessage
	if json.Unmarshal(raw, &pl) != nil {
		ps.add(p, "not a JSON object")
		return
	}
	url, hasURL := pl["url"]
	id, hasID := pl["attachment_id"]
	switch {
	case hasURL && hasID:
		ps.add(p, "has url and attachment_id; set exactly one")
	case !hasURL && !hasID:
		ps.add(p, "needs url or attachment_id")
	}
	if hasURL {
		if s, ok := stringValue(url); ok {
			checkURL(ps, p+".url", s)
		} else {
			ps.add(p+".url", "must be a string")
		}
	}
	if hasID && !isNumericJSON(id) {
		ps.add(p+".attachment_id", "must be a numeric id")
	}
	if r, ok := pl["is_reusable"]; ok && jsonKind(r) != "boolean" {
		ps.add(p+".is_reusable", "must be true or false")
	}
}

// button is the part of a template button that Meta's Buttons reference
// constrains.
type button struct {
	Type    string `json:"type"`
	Title   string `json:"title"`
	URL     string `json:"url"`
	Payload string `json:"payload"`
}

// templatePayload is the part of a template attachment payload that is
// validated; the payload itself is sent unchanged.
type templatePayload struct {
	TemplateType string   `json:"template_type"`
	Text         string   `json:"text"`
	Buttons      []button `json:"buttons"`
	Elements     []struct {
		Title    string   `json:"title"`
		Subtitle string   `json:"subtitle"`
		ImageURL string   `json:"image_url"`
		Buttons  []button `json:"buttons"`
	} `json:"elements"`
}

func validateTemplatePayload(p string, raw json.RawMessage, ps *problems) {
	var tp templatePayload
	if err := json.Unmarshal(raw, &tp); err != nil {
		ps.add(p, "unexpected value types in template payload: %s", strings.TrimPrefix(err.Error(), "json: "))
		return
	}
	switch strings.ToLower(tp.TemplateType) {
	case "":
		ps.add(p+".template_type", "required")
	case "button":
		if tp.Text == "" {
			ps.add(p+".text", "required for a button template")
		}
		checkLength(ps, p+".text", tp.Text, MaxButtonTemplateText)
		if len(tp.Buttons) == 0 {
			ps.add(p+".buttons", "a button template needs 1 to %d buttons", MaxButtons)
		}
		validateButtons(p+".buttons", tp.Buttons, ps)
	case "generic":
		switch n := len(tp.Elements); {
		case n == 0:
			ps.add(p+".elements", "a generic template needs 1 to %d elements", MaxGenericElements)
		case n > MaxGenericElements:
			ps.add(p+".elements", "%d elements, at most %d", n, MaxGenericElements)
		}
		for i, e := range tp.Elements {
			ep := index(p+".elements", i)
			if e.Title == "" {
				ps.add(ep+".title", "required")
			}
			checkLength(ps, ep+".title", e.Title, MaxElementTitle)
			checkLength(ps, ep+".subtitle", e.Subtitle, MaxElementTitle)
			if e.ImageURL != "" {
				checkURL(ps, ep+".image_url", e.ImageURL)
			}
			validateButtons(ep+".buttons", e.Buttons, ps)
		}
	}
}

func validateButtons(p string, bs []button, ps *problems) {
	if len(bs) > MaxButtons {
		ps.add(p, "%d buttons, at most %d", len(bs), MaxButtons)
	}
	for i, b := range bs {
		bp := index(p, i)
		checkLength(ps, bp+".title", b.Title, MaxButtonTitle)
		switch strings.ToLower(b.Type) {
		case "":
			ps.add(bp+".type", "required")
		case "web_url":
			if b.URL == "" {
				ps.add(bp+".url", "required for a web_url button")
			} else {
				checkURL(ps, bp+".url", b.URL)
			}
			if b.Title == "" {
				ps.add(bp+".title", "required for a web_url button")
			}
		case "postback":
			if b.Payload == "" {
				ps.add(bp+".payload", "required for a postback button")
			}
			if b.Title == "" {
				ps.add(bp+".title", "required for a postback button")
			}
			checkLength(ps, bp+".payload", b.Payload, MaxPayloadLength)
		}
	}
}

func oneOf(v string, set []string) bool {
	for _, s := range set {
		if strings.EqualFold(v, s) {
			return true
		}
	}
	return false
}

func stringValue(raw json.RawMessage) (string, bool) {
	var s string
	if jsonKind(raw) != "string" || json.Unmarshal(raw, &s) != nil {
		return "", false
	}
	return s, true
}

func checkNonEmptyString(ps *problems, path string, raw json.RawMessage) {
	if s, ok := stringValue(raw); !ok || s == "" {
		ps.add(path, "empty")
	}
}
