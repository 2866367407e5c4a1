package graphapi_test

import (
	"context"
	"errors"
	"fmt"
	"log"

	"github.com/pagesend/pagesend/graphapi"
	"github.com/pagesend/pagesend/graphapi/graphtest"
)

// Validate a job's request, send it to a fake Graph API, and classify a
// failure.
func Example() {
	fake := graphtest.NewServer(graphtest.Options{Tokens: map[string]string{"1234": "page-token"}})
	defer fake.Close()
	fake.ScriptRecipient("555", graphtest.Fail(551, 0))

	client, err := graphapi.NewClient(graphapi.ClientOptions{BaseURL: fake.URL()})
	if err != nil {
		log.Fatal(err)
	}
	token := graphapi.Secret("page-token") // prints as [redacted]
	for _, body := range []string{
		`{"recipient":{"id":"6789"},"messaging_type":"UPDATE","message":{"text":"Your order shipped"}}`,
		`{"recipient":{"id":"555"},"messaging_type":"UPDATE","message":{"text":"Hello?"}}`,
	} {
		req, err := graphapi.ParseRequest([]byte(body))
		if err != nil {
			log.Fatal(err)
		}
		resp, err := client.Send(context.Background(), "1234", token, req)
		d := graphapi.Classify(err)
		var ge *graphapi.Error
		if errors.As(err, &ge) {
			fmt.Printf("%s: code %d: %s\n", d.Class, ge.Code, ge.Message)
			continue
		}
		fmt.Printf("%s: %s to %s\n", d.Class, resp.MessageID, resp.RecipientID)
	}
	// Output:
	// sent: m_1 to 6789
	// drop: code 551: This person isn't available right now.
}

// Every problem in a request is reported at once, with its JSON path.
func ExampleRequest_Validate() {
	req, err := graphapi.DecodeRequest([]byte(`{
		"recipient": {"id": "6789"},
		"message": {"text": "Pick one", "quick_replies": [
			{"content_type": "text", "title": "A much too long title", "payload": "A"}
		]}
	}`))
	if err != nil {
		log.Fatal(err)
	}
	var ve *graphapi.ValidationError
	if errors.As(req.Validate(), &ve) {
		for _, p := range ve.Problems {
			fmt.Println(p)
		}
	}
	// Output:
	// request.message.quick_replies[0].title: 21 characters, at most 20
	// request.messaging_type: required with a message: one of RESPONSE, UPDATE, MESSAGE_TAG, UTILITY
}
