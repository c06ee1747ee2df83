module papaya/loadgen

go 1.22
