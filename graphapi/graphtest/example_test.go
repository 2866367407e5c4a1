package graphtest_test

import (
	"context"
	"errors"
	"fmt"
	"log"

	"github.com/pagesend/pagesend/graphapi"
	"github.com/pagesend/pagesend/graphapi/graphtest"
)

// A fake Page, a validated message, one send.
func Example() {
	srv := graphtest.NewServer(graphtest.Options{Tokens: map[string]string{"1234": "page-token"}})
	defer srv.Close()

	req, err := graphapi.ParseRequest([]byte(`{
		"recipient": {"id": "6789"},
		"messaging_type": "UPDATE",
		"message": {"text": "Your order shipped"}
	}`))
	if err != nil {
		log.Fatal(err)
	}
	client, err := graphapi.NewClient(graphapi.ClientOptions{BaseURL: srv.URL()})
	if err != nil {
		log.Fatal(err)
	}
	resp, err := client.Send(context.Background(), "1234", "page-token", req)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(resp.MessageID, resp.RecipientID)
	fmt.Println("calls:", srv.CallCount())
	// Output:
	// m_1 6789
	// calls: 1
}

// Scripted answers come first, in order; then the default success.
func ExampleServer_ScriptRecipient() {
	srv := graphtest.NewServer(graphtest.Options{})
	defer srv.Close()
	srv.ScriptRecipient("6789", graphtest.Fail(551, 0))

	client, err := srv.NewClient(graphapi.ClientOptions{})
	if err != nil {
		log.Fatal(err)
	}
	req := &graphapi.Request{
		Recipient:     &graphapi.Recipient{ID: "6789"},
		MessagingType: "UPDATE",
		Message:       &graphapi.Message{Text: "hello"},
	}
	for range 2 {
		resp, err := client.Send(context.Background(), "1234", "any-token", req)
		var ge *graphapi.Error
		if errors.As(err, &ge) {
			fmt.Println(ge.Code, ge.Message)
			continue
		}
		fmt.Println(resp.MessageID)
	}
	// Output:
	// 551 This person isn't available right now.
	// m_1
}
