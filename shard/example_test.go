package shard_test

import (
	"fmt"

	"github.com/pagesend/pagesend/shard"
)

func ExamplePick() {
	names := []string{"eu-1", "eu-2", "eu-3"}
	// Every process that knows the same names puts a Page on the same
	// shard; the order of the names does not matter.
	a := names[shard.Pick(names, "1234567890")]
	b := []string{"eu-3", "eu-1", "eu-2"}[shard.Pick([]string{"eu-3", "eu-1", "eu-2"}, "1234567890")]
	fmt.Println(a == b)
	// Output: true
}
