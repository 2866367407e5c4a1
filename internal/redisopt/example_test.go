package redisopt_test

import (
	"fmt"

	"github.com/hibiken/asynq"

	"github.com/pagesend/pagesend/internal/redisopt"
)

func ExampleParse() {
	opt, err := redisopt.Parse(redisopt.Settings{
		URL:      "redis-sentinel://10.0.0.1,10.0.0.2:26380,10.0.0.3/2?master=pagesend",
		Password: "from-a-secret-variable",
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	f := opt.(asynq.RedisFailoverClientOpt)
	fmt.Println(f.MasterName, f.SentinelAddrs, "db", f.DB, "password set:", f.Password != "")
	// Output: pagesend [10.0.0.1:26379 10.0.0.2:26380 10.0.0.3:26379] db 2 password set: true
}
