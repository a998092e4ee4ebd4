workspace {
  name = "bad"
}
