module papaya/chat/go

go 1.22
