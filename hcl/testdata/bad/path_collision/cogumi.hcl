workspace {
  name = "collide"
}
