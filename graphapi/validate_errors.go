package graphapi

import (
	"fmt"
	"strings"
)

// FieldError is one problem with a request, at a JSON path such as
// "request.message.quick_replies[3].title".
type FieldError struct {
	Path    string `json:"path"`
	Message string `json:"message"`
}

// Error reports the path and the problem, e.g.
// "request.message.text: 2001 characters, at most 2000".
func (e FieldError) Error() string {
	if e.Path == "" {
		return e.Message
	}
	return e.Path + ": " + e.Message
}

// ValidationError lists every problem found in a request; decoding and
// validation report all of them at once rather than the first. Callers
// branch on it with errors.As.
type ValidationError struct {
	Problems []FieldError
}

// Error joins the problems with "; ".
func (e *ValidationError) Error() string {
	if len(e.Problems) == 1 {
		return "invalid request: " + e.Problems[0].Error()
	}
	parts := make([]string, len(e.Problems))
	for i, p := range e.Problems {
		parts[i] = p.Error()
	}
	return fmt.Sprintf("invalid request (%d problems): %s", len(e.Problems), strings.Join(parts, "; "))
}

// problems collects FieldErrors while a request is checked.
type problems []FieldError

func (p *problems) add(path, format string, args ...any) {
	*p = append(*p, FieldError{Path: path, Message: fmt.Sprintf(format, args...)})
}

// err returns nil when nothing was found, so "return ps.err()" reads well.
func (p problems) err() error {
	if len(p) == 0 {
		return nil
	}
	return &ValidationError{Problems: p}
}
