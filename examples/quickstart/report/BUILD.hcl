# Count words in the corpus, then write a report of the most common ones.
run "counts" {
  srcs    = ["//data:corpus"]
  outs    = ["counts.txt"]
  command = "cat $SRCS | tr 'A-Z ' 'a-z\\n' | grep -v '^$' | sort | uniq -c | sort -k1,1nr -k2 > $OUT/counts.txt"
  env     = { LC_ALL = "C" }
}

run "final" {
  srcs    = ["header.txt", ":counts"]
  outs    = ["report.txt"]
  command = "cat report/header.txt > $OUT/report.txt && head -n ${var.top} report/counts/counts.txt >> $OUT/report.txt"
}
