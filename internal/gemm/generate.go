package gemm

//go:generate sh -c "cd asm && go run . -out .."
