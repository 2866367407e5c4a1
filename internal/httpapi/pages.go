package httpapi

import (
	"log/slog"
	"net/http"
	"time"

	"github.com/pagesend/pagesend/graphapi"
)

// Resumed is the answer of POST /v1/pages/{id}/resume: the pause that was
// lifted.
type Resumed struct {
	PageID string      `json:"page_id"`
	Lifted LiftedPause `json:"lifted"`
}

// LiftedPause is a ratelimit.Pause as the API shows it: without the
// rejected token's fingerprint, which is for workers only.
type LiftedPause struct {
	Reason string     `json:"reason"`
	Detail string     `json:"detail,omitempty"`
	Since  time.Time  `json:"since"`
	Until  *time.Time `json:"until,omitempty"`
}

// resumePage lifts a Page's pause, whatever its reason, as `pagesend pages
// resume` does: workers send its waiting messages from their next look.
func (a *API) resumePage(w http.ResponseWriter, r *http.Request) {
	page := r.PathValue("id")
	if !isPageID(page) {
		writeJSON(w, http.StatusBadRequest, errorBody{Error: codeInvalid, Message: "bad Page id",
			Problems: []Problem{{Path: "page_id", Message: "not a numeric Page id"}}})
		return
	}
	ctx, cancel := a.redisCtx(r)
	defer cancel()
	p, err := a.shardOf(page).pauses.Resume(ctx, page)
	if err != nil {
		a.log.Warn("resume page", "page_id", page, "err", err)
		writeUnavailable(w, "Redis is unavailable", nil)
		return
	}
	if p == nil {
		writeError(w, http.StatusNotFound, codeNotPaused, "page "+page+" is not paused")
		return
	}
	annotate(r, slog.String("page_id", page), slog.String("lifted", string(p.Reason)))
	lifted := LiftedPause{Reason: string(p.Reason), Detail: p.Detail, Since: p.Since.UTC(), Until: timePtr(p.Until)}
	writeJSON(w, http.StatusOK, Resumed{PageID: page, Lifted: lifted})
}

// isPageID reports whether s can be a Page id.
func isPageID(s string) bool { return graphapi.IsNumericID(s) }
