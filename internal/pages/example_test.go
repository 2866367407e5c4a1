package pages_test

import (
	"fmt"

	"github.com/pagesend/pagesend/internal/pages"
)

func Example() {
	file := []byte(`{
		"default_rate": 20,
		"pages": [
			{"id": "111", "name": "shop", "access_token_env": "SHOP_TOKEN", "rate": 40, "burst": 40},
			{"id": "222", "access_token_env": "BLOG_TOKEN", "media_rate": 5}
		]
	}`)
	// The worker passes nil for os.Getenv; here the environment is faked.
	env := map[string]string{"SHOP_TOKEN": "EAAexample"}
	cfg, err := pages.Parse(file, func(k string) string { return env[k] })
	if err != nil {
		fmt.Println(err)
		return
	}

	for _, id := range cfg.PageIDs() {
		_, ok := cfg.Token(id) // use the token; never print it
		text, media := cfg.Limits(id)
		fmt.Printf("page %s: token %v, text %v, media %v\n", id, ok, text, media)
	}
	text, _ := cfg.Limits("999") // a page not in the file gets the defaults
	fmt.Println("unknown page:", text)
	fmt.Println(cfg) // page ids and limits only

	_, err = pages.Parse([]byte(`{"pages": [{"id": "1", "acces_token": "EAAexample"}]}`), nil)
	fmt.Println(err)

	// Output:
	// page 111: token true, text 40/s burst 40, media 10/s burst 10
	// page 222: token false, text 20/s burst 20, media 5/s burst 10
	// unknown page: 20/s burst 20
	// pages config: 2 pages [111 222]; default 20/s burst 20, media 10/s burst 10
	// pages file: pages[0].acces_token: unknown field; pages[0]: set access_token or access_token_env
}

func ExampleStore() {
	// In the worker: store, err := pages.OpenStore(os.Getenv("PAGESEND_PAGES_FILE"), nil)
	// and go store.WatchSIGHUP(ctx, logger). Here a Store is fed in code.
	store := pages.NewStore(nil)
	store.OnChange(func(ch pages.Changes) {
		fmt.Println("added", ch.Added, "token changed", ch.TokenChanged)
	})
	cfg, _ := pages.Parse([]byte(`{"pages": [{"id": "111", "access_token": "EAAexample"}]}`), nil)
	store.Replace(cfg)
	fmt.Println("ready:", store.Loaded())
	// Output:
	// added [111] token changed [111]
	// ready: true
}
