package graphapi

import (
	"bytes"
	"encoding/json"
	"net/mail"
	"net/url"
	"strconv"
	"strings"
	"unicode/utf8"
)

// Limits Meta documents for the Send API. Where a limit is not in the
// "Page Messages" reference itself, the comment says where it comes from.
const (
	// MaxTextLength is the longest message text. The reference says "less
	// than 2000 characters"; Meta's error text reads "less than or equal
	// to", so exactly 2000 is accepted. Characters are Unicode code points.
	MaxTextLength = 2000
	// MaxQuickReplies is the most quick replies one message may carry
	// (Messenger Platform, Quick Replies reference).
	MaxQuickReplies = 13
	// MaxQuickReplyTitle is the longest quick-reply title (Quick Replies
	// reference: "20 character limit"; longer ones were refused with #100).
	MaxQuickReplyTitle = 20
	// MaxPayloadLength is the longest postback or quick-reply payload
	// (Quick Replies and Buttons references: "1000 character limit").
	MaxPayloadLength = 1000
	// MaxMetadataLength is the longest message metadata (Send API
	// reference: "must be less than 1,000 characters").
	MaxMetadataLength = 1000
	// MaxButtonTemplateText is the longest button-template text, and
	// MaxButtons the most buttons in a button template or generic-template
	// element (Button Template reference; more buttons give error #105).
	MaxButtonTemplateText = 640
	MaxButtons            = 3
	// MaxGenericElements is the most elements in a generic template, and
	// MaxElementTitle the longest element title or subtitle (Generic
	// Template reference: "Maximum of 10 elements", "80 character limit").
	MaxGenericElements = 10
	MaxElementTitle    = 80
	// MaxButtonTitle is the longest button title (Buttons reference:
	// "20 character limit").
	MaxButtonTitle = 20
	// MaxURLLength bounds URLs we pass on (attachment, quick-reply image,
	// button). Meta documents no figure; 2048 is the common browser bound
	// and keeps a job from carrying megabytes in a URL.
	MaxURLLength = 2048
)

// The enums of the reference, upper case. Values are compared
// case-insensitively.
var (
	MessagingTypes         = []string{"RESPONSE", "UPDATE", "MESSAGE_TAG", "UTILITY"}
	NotificationTypes      = []string{"REGULAR", "SILENT_PUSH", "NO_PUSH"}
	SenderActions          = []string{"MARK_SEEN", "TYPING_ON", "TYPING_OFF", "REACT", "UNREACT"}
	Tags                   = []string{"ACCOUNT_UPDATE", "CONFIRMED_EVENT_UPDATE", "CUSTOMER_FEEDBACK", "HUMAN_AGENT", "POST_PURCHASE_UPDATE"}
	AttachmentTypes        = []string{"IMAGE", "VIDEO", "AUDIO", "FILE", "LOCATION", "TEMPLATE", "FALLBACK", "REEL", "IG_REEL", "LIKE_HEART", "MEDIA_SHARE"}
	QuickReplyContentTypes = []string{"LOCATION", "USER_PHONE_NUMBER", "USER_EMAIL", "USER_CITY", "USER_BIRTHDAY", "USER_STATE", "USER_ZIP_CODE", "OPEN_CAMERA", "OPEN_GALLERY", "RECORD_AUDIO", "POLL", "TEXT", "OPEN_NATIVE", "STICKER", "OPEN_APP", "P2P_PAYMENT", "TRANSPORTATION", "CREATE_EVENT", "GIF", "BIC_OPT_IN", "DISPLAY_PERSISTENT_MENU", "BUSINESS_LEAD_FORM"}
	TemplateComponentTypes = []string{"HEADER", "BODY", "TITLE", "BUTTONS"}
	QuickReplyPaymentTypes = []string{"PAY", "REQUEST"}
)

// Validate checks r against the Send API's documented rules and returns a
// *ValidationError listing every problem, or nil. It does not change r.
func (r *Request) Validate() error {
	var ps problems
	r.validate(&ps)
	return ps.err()
}

func (r *Request) validate(ps *problems) {
	const p = RootPath
	r.validateRecipient(ps)

	switch {
	case r.Message == nil && r.SenderAction == "":
		ps.add(p, "needs message or sender_action")
	case r.Message != nil && r.SenderAction != "":
		ps.add(p+".sender_action", "cannot be sent with message (Meta answers 100/2018014); send it as a separate request")
	}
	if r.Message != nil {
		r.Message.validate(p+".message", ps)
	}
	r.validateSenderAction(ps)

	if r.MessagingType != "" {
		checkEnum(ps, p+".messaging_type", r.MessagingType, MessagingTypes)
	} else if r.Message != nil && r.needsMessagingType() {
		ps.add(p+".messaging_type", "required with a message: one of %s", strings.Join(MessagingTypes, ", "))
	}
	isTagged := strings.EqualFold(r.MessagingType, "MESSAGE_TAG")
	switch {
	case isTagged && r.Tag == "":
		ps.add(p+".tag", "required when messaging_type is MESSAGE_TAG: one of %s", strings.Join(Tags, ", "))
	case !isTagged && r.Tag != "":
		ps.add(p+".tag", "only allowed when messaging_type is MESSAGE_TAG")
	case r.Tag != "":
		checkEnum(ps, p+".tag", r.Tag, Tags)
	}
	if r.NotificationType != "" {
		checkEnum(ps, p+".notification_type", r.NotificationType, NotificationTypes)
	}
	if r.PersonaID != "" {
		checkNumeric(ps, p+".persona_id", r.PersonaID)
	}
	if r.ThreadControl != nil && r.ThreadControl.AppID != "" {
		checkNumeric(ps, p+".thread_control.app_id", r.ThreadControl.AppID)
	}
}

// needsMessagingType reports whether Meta requires messaging_type for this
// recipient. Private replies (comment_id, post_id) and notification-token
// sends are documented without it.
func (r *Request) needsMessagingType() bool {
	rc := r.Recipient
	if rc == nil {
		return true
	}
	return rc.CommentID == "" && rc.PostID == "" && rc.OneTimeNotifToken == "" && rc.NotificationMessagesToken == ""
}

// Kind names the field that identifies the recipient ("id",
// "phone_number", "user_ref", …), never its value: the first set, "" when
// none is or rc is nil. A valid request has exactly one.
func (rc *Recipient) Kind() string {
	if rc == nil {
		return ""
	}
	if ids := rc.identifiers(); len(ids) > 0 {
		return ids[0]
	}
	return ""
}

// Key identifies the recipient for grouping sends into conversations: its
// kind and value ("id=6789", "ids=1,2"), "" when rc is nil or has no
// identifier. Two requests go to the same recipient when their Keys are
// equal. It holds the identifier, so do not log it.
func (rc *Recipient) Key() string {
	if rc == nil {
		return ""
	}
	for _, f := range rc.fields() {
		if f.set {
			return f.name + "=" + f.value
		}
	}
	return ""
}

// identifiers lists the recipient's identifying fields that are set, by
// JSON name.
func (rc *Recipient) identifiers() []string {
	var set []string
	for _, f := range rc.fields() {
		if f.set {
			set = append(set, f.name)
		}
	}
	return set
}

// field is one identifying field of a recipient: its JSON name, whether
// it is set, and its value (ids joined with commas).
type field struct {
	name  string
	set   bool
	value string
}

func (rc *Recipient) fields() []field {
	str := func(name, v string) field { return field{name, v != "", v} }
	return []field{
		str("id", rc.ID),
		str("phone_number", rc.PhoneNumber),
		str("user_ref", rc.UserRef),
		str("comment_id", rc.CommentID),
		str("post_id", rc.PostID),
		str("player_id", rc.PlayerID),
		str("one_time_notif_token", rc.OneTimeNotifToken),
		str("notification_messages_token", rc.NotificationMessagesToken),
		str("login_id", rc.LoginID),
		str("email", rc.Email),
		{"ids", len(rc.IDs) > 0, strings.Join(rc.IDs, ",")},
		str("thread_key", rc.ThreadKey),
	}
}

func (r *Request) validateRecipient(ps *problems) {
	const p = RootPath + ".recipient"
	rc := r.Recipient
	if rc == nil {
		ps.add(p, "required")
		return
	}
	switch ids := rc.identifiers(); len(ids) {
	case 0:
		ps.add(p, "needs exactly one identifier: id, phone_number, user_ref, comment_id, post_id, player_id, one_time_notif_token, notification_messages_token, login_id, email, ids or thread_key")
	case 1:
	default:
		ps.add(p, "has %s; set exactly one identifier", strings.Join(ids, " and "))
	}
	if rc.ID != "" {
		checkNumeric(ps, p+".id", rc.ID)
	}
	if rc.PlayerID != "" {
		checkNumeric(ps, p+".player_id", rc.PlayerID)
	}
	if rc.PhoneNumber != "" && !isPhoneNumber(rc.PhoneNumber) {
		ps.add(p+".phone_number", "%q is not a phone number (digits with optional +, spaces, dashes, dots and parentheses; 7 to 15 digits)", rc.PhoneNumber)
	}
	if rc.Email != "" {
		if a, err := mail.ParseAddress(rc.Email); err != nil || a.Address != rc.Email {
			ps.add(p+".email", "not an email address")
		}
	}
	for i, id := range rc.IDs {
		if id == "" {
			ps.add(index(p+".ids", i), "empty")
		}
	}
	if rc.Name != nil {
		if rc.PhoneNumber == "" {
			ps.add(p+".name", "only allowed with phone_number (customer matching)")
		}
		if rc.Name.FirstName == "" && rc.Name.LastName == "" {
			ps.add(p+".name", "needs first_name or last_name")
		}
	}
}

func (r *Request) validateSenderAction(ps *problems) {
	const p = RootPath
	if r.SenderAction != "" {
		checkEnum(ps, p+".sender_action", r.SenderAction, SenderActions)
	}
	react := strings.EqualFold(r.SenderAction, "REACT")
	unreact := strings.EqualFold(r.SenderAction, "UNREACT")
	if !react && !unreact {
		if len(r.Payload) > 0 {
			ps.add(p+".payload", "only used with sender_action REACT or UNREACT")
		}
		return
	}
	action := strings.ToUpper(r.SenderAction)
	switch kind := jsonKind(r.Payload); kind {
	case "":
		ps.add(p+".payload", "required with sender_action %s", action)
	case "string":
		var s string
		if json.Unmarshal(r.Payload, &s) != nil || s == "" {
			ps.add(p+".payload", "required with sender_action %s", action)
		}
	case "object":
		var pl struct {
			MessageID string `json:"message_id"`
			Reaction  string `json:"reaction"`
		}
		if err := json.Unmarshal(r.Payload, &pl); err != nil {
			ps.add(p+".payload", "message_id and reaction must be strings")
			return
		}
		if pl.MessageID == "" {
			ps.add(p+".payload.message_id", "required with sender_action %s", action)
		}
		if react && pl.Reaction == "" {
			ps.add(p+".payload.reaction", "required with sender_action REACT")
		}
	default:
		ps.add(p+".payload", "must be an object or a string, got %s", kind)
	}
}

func (m *Message) validate(p string, ps *problems) {
	var set []string
	if m.Text != "" {
		set = append(set, "text")
	}
	if m.DynamicText != nil {
		set = append(set, "dynamic_text")
	}
	if m.Attachment != nil {
		set = append(set, "attachment")
	}
	if m.Attachments != nil {
		set = append(set, "attachments")
	}
	if m.Template != nil {
		set = append(set, "template")
	}
	switch len(set) {
	case 0:
		ps.add(p, "needs one of text, attachment, attachments, dynamic_text or template")
	case 1:
	default:
		ps.add(p, "has %s; set exactly one", strings.Join(set, " and "))
	}

	checkLength(ps, p+".text", m.Text, MaxTextLength)
	if dt := m.DynamicText; dt != nil {
		if dt.Text == "" {
			ps.add(p+".dynamic_text.text", "required")
		}
		checkLength(ps, p+".dynamic_text.text", dt.Text, MaxTextLength)
		checkLength(ps, p+".dynamic_text.fallback_text", dt.FallbackText, MaxTextLength)
	}
	if m.Attachment != nil {
		m.Attachment.validate(p+".attachment", ps)
	}
	if m.Attachments != nil && len(m.Attachments) == 0 {
		ps.add(p+".attachments", "empty; give at least one attachment")
	}
	for i := range m.Attachments {
		m.Attachments[i].validate(index(p+".attachments", i), ps)
	}
	if len(m.QuickReplies) > MaxQuickReplies {
		ps.add(p+".quick_replies", "%d quick replies, at most %d", len(m.QuickReplies), MaxQuickReplies)
	}
	for i := range m.QuickReplies {
		m.QuickReplies[i].validate(index(p+".quick_replies", i), ps)
	}
	if m.Template != nil {
		m.Template.validate(p+".template", ps)
	}
	checkLength(ps, p+".metadata", m.Metadata, MaxMetadataLength)
}

func (q *QuickReply) validate(p string, ps *problems) {
	if q.ContentType == "" {
		ps.add(p+".content_type", "required: one of %s", strings.Join(QuickReplyContentTypes, ", "))
	} else {
		checkEnum(ps, p+".content_type", q.ContentType, QuickReplyContentTypes)
	}
	if strings.EqualFold(q.ContentType, "TEXT") {
		if q.Title == "" {
			ps.add(p+".title", "required for a TEXT quick reply")
		}
		if q.Payload == "" {
			ps.add(p+".payload", "required for a TEXT quick reply")
		}
	}
	checkLength(ps, p+".title", q.Title, MaxQuickReplyTitle)
	checkLength(ps, p+".payload", q.Payload, MaxPayloadLength)
	if q.ImageURL != "" {
		checkURL(ps, p+".image_url", q.ImageURL)
	}
	if d := q.Data; d != nil {
		dp := p + ".data"
		if d.PaymentType != "" {
			checkEnum(ps, dp+".payment_type", d.PaymentType, QuickReplyPaymentTypes)
		}
		if d.PaymentCurrency != "" && !isCurrencyCode(d.PaymentCurrency) {
			ps.add(dp+".payment_currency", "%q is not an ISO 4217 code (three letters, e.g. USD)", d.PaymentCurrency)
		}
		if d.PaymentAmount != nil && *d.PaymentAmount < 0 {
			ps.add(dp+".payment_amount", "negative")
		}
		if len(d.StickerID) > 0 && !isNumericJSON(d.StickerID) {
			ps.add(dp+".sticker_id", "must be a numeric string or an integer")
		}
		for i, o := range d.PollOptions {
			if o == "" {
				ps.add(index(dp+".poll_options", i), "empty")
			}
		}
	}
}

func (t *Template) validate(p string, ps *problems) {
	if t.Name == "" {
		ps.add(p+".name", "required")
	}
	switch {
	case t.Language == nil:
		ps.add(p+".language", "required")
	case t.Language.Code == "":
		ps.add(p+".language.code", "required")
	}
	for i, c := range t.Components {
		cp := index(p+".components", i)
		if c.Type == "" {
			ps.add(cp+".type", "required: one of %s", strings.Join(TemplateComponentTypes, ", "))
		} else {
			checkEnum(ps, cp+".type", c.Type, TemplateComponentTypes)
		}
		for j, prm := range c.Parameters {
			pp := index(cp+".parameters", j)
			if prm.Type == "" {
				ps.add(pp+".type", "required")
			}
			if prm.URL != "" {
				checkURL(ps, pp+".url", prm.URL)
			}
		}
	}
}

func index(path string, i int) string {
	return path + "[" + strconv.Itoa(i) + "]"
}

func checkEnum(ps *problems, path, v string, allowed []string) {
	if oneOf(v, allowed) {
		return
	}
	ps.add(path, "%q is not one of %s", v, strings.Join(allowed, ", "))
}

func checkLength(ps *problems, path, s string, max int) {
	if n := utf8.RuneCountInString(s); n > max {
		ps.add(path, "%d characters, at most %d", n, max)
	}
}

func checkNumeric(ps *problems, path, s string) {
	if !isNumeric(s) {
		ps.add(path, "%q is not a numeric id", truncate(s, 40))
	}
}

func checkURL(ps *problems, path, s string) {
	if len(s) > MaxURLLength {
		ps.add(path, "URL of %d bytes, at most %d", len(s), MaxURLLength)
		return
	}
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		ps.add(path, "not an absolute http(s) URL")
	}
}

// IsNumericID reports whether s is a Graph object id as pagesend accepts
// one (a Page id, say): 1 to 64 ASCII digits.
func IsNumericID(s string) bool { return isNumeric(s) }

func isNumeric(s string) bool {
	if s == "" || len(s) > 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// isNumericJSON reports whether raw is a non-negative integer or a string
// holding one.
func isNumericJSON(raw json.RawMessage) bool {
	raw = bytes.TrimSpace(raw)
	if len(raw) > 0 && raw[0] == '"' {
		var s string
		return json.Unmarshal(raw, &s) == nil && isNumeric(s)
	}
	return isNumeric(string(raw))
}

func isPhoneNumber(s string) bool {
	digits := 0
	for i, c := range s {
		switch {
		case c >= '0' && c <= '9':
			digits++
		case c == '+' && i == 0:
		case c == ' ' || c == '-' || c == '.' || c == '(' || c == ')':
		default:
			return false
		}
	}
	return digits >= 7 && digits <= 15
}

func isCurrencyCode(s string) bool {
	if len(s) != 3 {
		return false
	}
	for i := 0; i < 3; i++ {
		c := s[i] | 0x20 // lower-case ASCII letters
		if c < 'a' || c > 'z' {
			return false
		}
	}
	return true
}

// jsonKind names the JSON type of raw: "", "object", "array", "string",
// "number", "boolean" or "null".
func jsonKind(raw json.RawMessage) string {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 {
		return ""
	}
	switch raw[0] {
	case '{':
		return "object"
	case '[':
		return "array"
	case '"':
		return "string"
	case 't', 'f':
		return "boolean"
	case 'n':
		return "null"
	}
	return "number"
}

func truncate(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	r := []rune(s)
	return string(r[:n]) + "…"
}
