package httpapi

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/pagesend/pagesend/ratelimit"
)

func TestResumePage(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	pauses := ratelimit.NewPauses(e.redis.Client(t), "")
	since := time.Now().UTC().Truncate(time.Millisecond)
	if err := pauses.Pause(ctx, ratelimit.Pause{PageID: "1234567890", Reason: ratelimit.ReasonTokenInvalid,
		Detail: "Graph error 190/460 (fbtrace_id AbC)", Since: since, TokenFingerprint: "0123456789ab"}); err != nil {
		t.Fatal(err)
	}
	r := e.post("/v1/pages/1234567890/resume", writeSecret, "")
	if r.Status != http.StatusOK || r.str("page_id") != "1234567890" || r.str("lifted.reason") != "token_invalid" ||
		r.str("lifted.detail") != "Graph error 190/460 (fbtrace_id AbC)" || r.str("lifted.since") != since.Format(time.RFC3339Nano) {
		t.Fatalf("%d %s", r.Status, r.Body)
	}
	if strings.Contains(string(r.Body), "0123456789ab") {
		t.Errorf("the answer shows the token fingerprint: %s", r.Body)
	}
	if p, err := pauses.Get(ctx, "1234567890"); err != nil || p != nil {
		t.Errorf("still paused: %+v, %v", p, err)
	}
	if r := e.post("/v1/pages/1234567890/resume", writeSecret, ""); r.Status != http.StatusNotFound || r.str("error") != "not_paused" {
		t.Errorf("not paused: %d %s", r.Status, r.Body)
	}

	until := time.Now().Add(time.Hour)
	if err := pauses.Pause(ctx, ratelimit.Pause{PageID: "55", Reason: ratelimit.ReasonThrottled, Until: until}); err != nil {
		t.Fatal(err)
	}
	if r := e.post("/v1/pages/55/resume", writeSecret, ""); r.Status != http.StatusOK || r.str("lifted.reason") != "throttled" || r.str("lifted.until") == "" {
		t.Errorf("throttled: %d %s", r.Status, r.Body)
	}
	if r := e.post("/v1/pages/page-1/resume", writeSecret, ""); r.Status != http.StatusBadRequest || r.str("problems.0.path") != "page_id" {
		t.Errorf("non-numeric id: %d %s", r.Status, r.Body)
	}
}
