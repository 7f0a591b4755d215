package queueui_test

import (
	"fmt"
	"net/http"
	"net/http/httptest"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"

	"github.com/voicequeue/voicequeue/internal/queueui"
)

// The gateway mounts the UI under /ui/, read-only, behind its producer-token check.
func ExampleHandler() {
	mr := miniredis.NewMiniRedis()
	if err := mr.Start(); err != nil {
		panic(err)
	}
	defer mr.Close()
	rdb := redis.NewClient(&redis.Options{Addr: mr.Addr()})
	defer rdb.Close()

	mux := http.NewServeMux()
	mux.Handle("/ui/", queueui.Handler(rdb, "/ui/", true))

	for _, req := range []*http.Request{
		httptest.NewRequest("GET", "/ui/", nil),
		httptest.NewRequest("POST", "/ui/api/queues/verify:pause", nil),
	} {
		rec := httptest.NewRecorder()
		mux.ServeHTTP(rec, req)
		fmt.Println(req.Method, req.URL.Path, rec.Code)
	}
	// Output:
	// GET /ui/ 200
	// POST /ui/api/queues/verify:pause 405
}
