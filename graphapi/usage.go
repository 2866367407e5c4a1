package graphapi

import (
	"encoding/json"
	"net/http"
	"time"
)

// The response headers in which Meta reports how much of a rate limit is
// used (Graph API rate-limiting guide).
const (
	HeaderAppUsage      = "X-App-Usage"
	HeaderPageUsage     = "X-Page-Usage"
	HeaderBusinessUsage = "X-Business-Use-Case-Usage"
)

// UsageFigures are percentages of a limit used; Meta may throttle calls
// when any of them reaches 100.
type UsageFigures struct {
	CallCount    float64 `json:"call_count"`
	TotalTime    float64 `json:"total_time"`
	TotalCPUTime float64 `json:"total_cputime"`
}

// Max is the largest of the three figures.
func (u UsageFigures) Max() float64 {
	return max(u.CallCount, u.TotalTime, u.TotalCPUTime)
}

// BusinessUsage is one entry of X-Business-Use-Case-Usage.
type BusinessUsage struct {
	BusinessID string `json:"business_id"`
	// Type is the use case, e.g. "messenger" or "pages".
	Type string `json:"type"`
	UsageFigures
	// EstimatedTimeToRegainAccess is in minutes, as Meta sends it.
	EstimatedTimeToRegainAccess float64 `json:"estimated_time_to_regain_access"`
}

// Usage is what the usage headers of one response said. A nil pointer or
// an empty slice means the header was absent or could not be parsed.
type Usage struct {
	App      *UsageFigures
	Page     *UsageFigures
	Business []BusinessUsage
}

// ParseUsage reads the usage headers. Malformed headers are ignored: they
// are advice, and a bad one must not turn a delivered message into an
// error.
func ParseUsage(h http.Header) Usage {
	var u Usage
	u.App = parseFigures(h.Get(HeaderAppUsage))
	u.Page = parseFigures(h.Get(HeaderPageUsage))
	if v := h.Get(HeaderBusinessUsage); v != "" && len(v) <= maxHeaderJSON {
		var m map[string][]BusinessUsage
		if json.Unmarshal([]byte(v), &m) == nil {
			for id, list := range m {
				for _, b := range list {
					b.BusinessID = id
					u.Business = append(u.Business, b)
				}
			}
		}
	}
	return u
}

// maxHeaderJSON bounds the header values we parse; Meta's are well under
// a kilobyte even with the 32 business entries it may send.
const maxHeaderJSON = 64 << 10

func parseFigures(v string) *UsageFigures {
	if v == "" || len(v) > maxHeaderJSON {
		return nil
	}
	var f UsageFigures
	if json.Unmarshal([]byte(v), &f) != nil {
		return nil
	}
	return &f
}

// IsZero reports whether no usage header was present.
func (u Usage) IsZero() bool {
	return u.App == nil && u.Page == nil && len(u.Business) == 0
}

// MaxPercent is the highest usage figure in any header, 0 without headers.
func (u Usage) MaxPercent() float64 {
	var m float64
	if u.App != nil {
		m = max(m, u.App.Max())
	}
	if u.Page != nil {
		m = max(m, u.Page.Max())
	}
	for _, b := range u.Business {
		m = max(m, b.Max())
	}
	return m
}

// RegainAccessIn is the longest estimated_time_to_regain_access in the
// business-use-case header, or 0 when none is given.
func (u Usage) RegainAccessIn() time.Duration {
	var m float64
	for _, b := range u.Business {
		m = max(m, b.EstimatedTimeToRegainAccess)
	}
	return time.Duration(min(m, maxRegainMinutes) * float64(time.Minute))
}

// maxRegainMinutes caps a hint so that a corrupt header cannot park a Page
// for years. Meta's business-use-case windows are at most 24 hours.
const maxRegainMinutes = 24 * 60
