package worker_test

import (
	"context"
	"fmt"
	"log"
	"log/slog"
	"time"

	"github.com/hibiken/asynq"

	"github.com/pagesend/pagesend/enqueue"
	"github.com/pagesend/pagesend/graphapi"
	"github.com/pagesend/pagesend/graphapi/graphtest"
	"github.com/pagesend/pagesend/internal/job"
	"github.com/pagesend/pagesend/internal/pages"
	"github.com/pagesend/pagesend/internal/redistest"
	"github.com/pagesend/pagesend/worker"
)

// A worker delivering one message to a fake Graph API.
func Example() {
	rs, err := redistest.StartProcess(redistest.Options{})
	if err != nil {
		log.Fatal(err)
	}
	defer rs.Stop()
	redisOpt := asynq.RedisClientOpt{Addr: rs.Addr()}
	fake := graphtest.NewServer(graphtest.Options{Tokens: map[string]string{"1234": "page-token"}})
	defer fake.Close()

	graph, err := graphapi.NewClient(graphapi.ClientOptions{BaseURL: fake.URL()})
	if err != nil {
		log.Fatal(err)
	}
	limit := pages.Limit{Rate: 20, Burst: 20}
	tokens := pages.NewStore(pages.NewConfig(limit, limit, nil, map[string]graphapi.Secret{"1234": "page-token"}))
	w, err := worker.New(worker.Options{
		Redis:  redisOpt,
		Graph:  graph,
		Tokens: tokens,
		Logger: slog.New(slog.DiscardHandler),
	})
	if err != nil {
		log.Fatal(err)
	}
	if err := w.Start(); err != nil {
		log.Fatal(err)
	}
	defer w.Shutdown()

	client := enqueue.NewClient(redisOpt)
	defer client.Close()
	info, err := client.Enqueue(context.Background(), enqueue.Job{PageID: "1234", Request: &graphapi.Request{
		Recipient:     &graphapi.Recipient{ID: "6789"},
		MessagingType: "UPDATE",
		Message:       &graphapi.Message{Text: "hello"},
	}})
	if err != nil {
		log.Fatal(err)
	}

	in := asynq.NewInspector(redisOpt)
	defer in.Close()
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		ti, err := in.GetTaskInfo(info.Queue, info.ID)
		if err == nil && ti.State == asynq.TaskStateCompleted {
			res, _ := job.DecodeResult(ti.Result)
			fmt.Println(res.Outcome, res.MessageID, res.RecipientID)
			break
		}
	}
	// Output: sent m_1 6789
}
