package job

import (
	"encoding/json"
	"time"
)

// The outcomes a Result records.
const (
	OutcomeSent         = "sent"
	OutcomeDropped      = "dropped"
	OutcomeDeadLettered = "dead_lettered"
)

// Result is what the worker writes on a finished task (asynq's
// ResultWriter): the message id of a sent message, or the reason a message
// was dropped or dead-lettered. It never holds a token or message text.
type Result struct {
	Outcome   string `json:"outcome"`
	PageID    string `json:"page_id,omitempty"`
	MessageID string `json:"message_id,omitempty"`
	// MessageIDs are the message ids of a sequence job's requests that
	// were delivered, in order; MessageID is the last of them.
	MessageIDs  []string  `json:"message_ids,omitempty"`
	RecipientID string    `json:"recipient_id,omitempty"`
	Code        int       `json:"code,omitempty"`
	Subcode     int       `json:"subcode,omitempty"`
	Reason      string    `json:"reason,omitempty"`
	FBTraceID   string    `json:"fbtrace_id,omitempty"`
	Attempts    int       `json:"attempts"`
	At          time.Time `json:"at"`
}

// Encode marshals the result.
func (r *Result) Encode() []byte {
	b, _ := json.Marshal(r) // a struct of strings, ints and a time cannot fail
	return b
}

// DecodeResult parses a stored result.
func DecodeResult(b []byte) (*Result, error) {
	var r Result
	if err := json.Unmarshal(b, &r); err != nil {
		return nil, err
	}
	return &r, nil
}
