package main

import (
	"context"
	"errors"
)

func runDemo(ctx context.Context, args []string, e env) error { return errors.New("demo: not yet") }
