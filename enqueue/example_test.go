package enqueue_test

import (
	"context"
	"errors"
	"fmt"
	"log"

	"github.com/hibiken/asynq"

	"github.com/pagesend/pagesend/enqueue"
	"github.com/pagesend/pagesend/graphapi"
	"github.com/pagesend/pagesend/internal/redistest"
)

// Enqueue a message once, see a retry of the same key reported as a
// duplicate, and see an invalid job refused with the field named.
func Example() {
	rs, err := redistest.StartProcess(redistest.Options{}) // a private redis-server for the example
	if err != nil {
		log.Fatal(err)
	}
	defer rs.Stop()

	client := enqueue.NewClient(asynq.RedisClientOpt{Addr: rs.Addr()})
	defer client.Close()
	ctx := context.Background()

	j := enqueue.Job{
		PageID:         "1234567890",
		IdempotencyKey: "order-42-shipped",
		Priority:       "high",
		Request: &graphapi.Request{
			Recipient:     &graphapi.Recipient{ID: "6789"},
			MessagingType: "UPDATE",
			Message:       &graphapi.Message{Text: "Your order shipped"},
		},
	}
	for range 2 {
		info, err := client.Enqueue(ctx, j)
		if err != nil {
			log.Fatal(err)
		}
		fmt.Println(info.ID, info.Queue, "duplicate:", info.Duplicate)
	}

	j.IdempotencyKey, j.Request.MessagingType = "", "SOMETIME"
	_, err = client.Enqueue(ctx, j)
	var ve *graphapi.ValidationError
	if errors.As(err, &ve) {
		fmt.Println(ve.Problems[0].Path)
	}
	// Output:
	// order-42-shipped high duplicate: false
	// order-42-shipped high duplicate: true
	// request.messaging_type
}
