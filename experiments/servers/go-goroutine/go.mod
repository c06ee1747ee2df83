module papaya/servers/go-goroutine

go 1.22
