package graphapi

import (
	"github.com/pagesend/pagesend/internal/strictjson"
)

// RootPath is the JSON path prefix of every FieldError about a request: the
// request sits under "request" in a pagesend job.
const RootPath = "request"

// DecodeRequest parses a Send API request body. Keys the Send API does not
// define (matched exactly, so "Text" is not "text") and values of the wrong
// JSON type are all reported at once in a *ValidationError, each with its
// path. DecodeRequest does not validate values; call Validate for that.
func DecodeRequest(data []byte) (*Request, error) {
	var r Request
	if probs := strictjson.Decode(data, RootPath, &r); len(probs) > 0 {
		return nil, fromStrict(probs)
	}
	return &r, nil
}

// ParseRequest decodes and validates a request body in one step.
func ParseRequest(data []byte) (*Request, error) {
	r, err := DecodeRequest(data)
	if err != nil {
		return nil, err
	}
	if err := r.Validate(); err != nil {
		return nil, err
	}
	return r, nil
}

func fromStrict(probs []strictjson.Problem) *ValidationError {
	ve := &ValidationError{Problems: make([]FieldError, len(probs))}
	for i, p := range probs {
		ve.Problems[i] = FieldError{Path: p.Path, Message: p.Message}
	}
	return ve
}
