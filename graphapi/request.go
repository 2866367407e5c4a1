package graphapi

import "encoding/json"

// Request is the body of POST /{version}/{page-id}/messages, field for field
// as Meta documents it (the union of both revisions of the "Page Messages"
// reference). Unset fields are omitted when encoding, so the body sent to
// Meta is what the producer wrote.
//
// Enum-valued fields are plain strings: Meta's reference writes them in upper
// case (TYPING_ON) while its guides and most producers use lower case
// (typing_on). Validation accepts both, case-insensitively, and the value is
// sent as written.
type Request struct {
	Recipient        *Recipient `json:"recipient,omitempty"`
	MessagingType    string     `json:"messaging_type,omitempty"`
	Tag              string     `json:"tag,omitempty"`
	NotificationType string     `json:"notification_type,omitempty"`
	Message          *Message   `json:"message,omitempty"`
	SenderAction     string     `json:"sender_action,omitempty"`
	// Payload goes with SenderAction REACT and UNREACT. Meta's guides send
	// an object ({"message_id": "m_…", "reaction": "love"}); the reference
	// lists a string. Either is kept byte for byte.
	Payload       json.RawMessage `json:"payload,omitempty"`
	PersonaID     string          `json:"persona_id,omitempty"`
	ReplyTo       string          `json:"reply_to,omitempty"`
	ThreadControl *ThreadControl  `json:"thread_control,omitempty"`
}

// Recipient names the person (or thread) a message goes to. Exactly one
// identifier is set; Name only accompanies PhoneNumber (customer matching).
type Recipient struct {
	ID                        string   `json:"id,omitempty"`
	PhoneNumber               string   `json:"phone_number,omitempty"`
	Name                      *Name    `json:"name,omitempty"`
	UserRef                   string   `json:"user_ref,omitempty"`
	CommentID                 string   `json:"comment_id,omitempty"`
	PostID                    string   `json:"post_id,omitempty"`
	PlayerID                  string   `json:"player_id,omitempty"`
	OneTimeNotifToken         string   `json:"one_time_notif_token,omitempty"`
	NotificationMessagesToken string   `json:"notification_messages_token,omitempty"`
	LoginID                   string   `json:"login_id,omitempty"`
	Email                     string   `json:"email,omitempty"`
	IDs                       []string `json:"ids,omitempty"`
	ThreadKey                 string   `json:"thread_key,omitempty"`
}

// Name is the recipient's name for customer matching by phone number.
type Name struct {
	FirstName string `json:"first_name,omitempty"`
	LastName  string `json:"last_name,omitempty"`
}

// Message is the content of a message. Exactly one of Text, DynamicText,
// Attachment, Attachments or Template is set.
type Message struct {
	Text           string       `json:"text,omitempty"`
	DynamicText    *DynamicText `json:"dynamic_text,omitempty"`
	Attachment     *Attachment  `json:"attachment,omitempty"`
	Attachments    []Attachment `json:"attachments,omitempty"`
	QuickReplyType string       `json:"quick_reply_type,omitempty"`
	QuickReplies   []QuickReply `json:"quick_replies,omitempty"`
	Template       *Template    `json:"template,omitempty"`
	Metadata       string       `json:"metadata,omitempty"`
}

// DynamicText is text with personalisation placeholders ({{first_name}})
// and the text to show where they cannot be filled.
type DynamicText struct {
	Text         string `json:"text,omitempty"`
	FallbackText string `json:"fallback_text,omitempty"`
}

// Attachment is a media file, template or other rich content.
//
// Payload is an object in the real API (url, is_reusable, attachment_id,
// template_type, elements, buttons, …) although the reference lists it as a
// string; both are accepted. The documented keys are validated and the whole
// payload is passed through unchanged.
type Attachment struct {
	Type    string          `json:"type,omitempty"`
	Payload json.RawMessage `json:"payload,omitempty"`
}

// QuickReply is a button shown above the composer.
type QuickReply struct {
	Title       string          `json:"title,omitempty"`
	ContentType string          `json:"content_type,omitempty"`
	ImageURL    string          `json:"image_url,omitempty"`
	Data        *QuickReplyData `json:"data,omitempty"`
	Payload     string          `json:"payload,omitempty"`
}

// QuickReplyData carries the extra fields of special quick replies
// (stickers, payments, polls, native apps).
type QuickReplyData struct {
	App         string `json:"app,omitempty"`
	DestAddress string `json:"dest_address,omitempty"`
	// StickerID is a numeric string or an integer; it is kept as written.
	StickerID       json.RawMessage `json:"sticker_id,omitempty"`
	PaymentAmount   *int64          `json:"payment_amount,omitempty"`
	PaymentCurrency string          `json:"payment_currency,omitempty"`
	PaymentType     string          `json:"payment_type,omitempty"`
	PollOptions     []string        `json:"poll_options,omitempty"`
	ProviderName    string          `json:"provider_name,omitempty"`
	NativeURI       string          `json:"native_uri,omitempty"`
}

// Template is a pre-approved message template with its parameters.
type Template struct {
	Name       string              `json:"name,omitempty"`
	Language   *TemplateLanguage   `json:"language,omitempty"`
	Components []TemplateComponent `json:"components,omitempty"`
}

// TemplateLanguage names the language of a template.
type TemplateLanguage struct {
	Code string `json:"code,omitempty"`
}

// TemplateComponent fills one part (header, body, title, buttons) of a template.
type TemplateComponent struct {
	Type       string              `json:"type,omitempty"`
	Parameters []TemplateParameter `json:"parameters,omitempty"`
}

// TemplateParameter is one value substituted into a template component.
type TemplateParameter struct {
	Type    string `json:"type,omitempty"`
	Text    string `json:"text,omitempty"`
	Payload string `json:"payload,omitempty"`
	URL     string `json:"url,omitempty"`
}

// ThreadControl passes or takes control of a thread (handover protocol).
type ThreadControl struct {
	Payload     string `json:"payload,omitempty"`
	AppID       string `json:"app_id,omitempty"`
	ControlType string `json:"control_type,omitempty"`
}
