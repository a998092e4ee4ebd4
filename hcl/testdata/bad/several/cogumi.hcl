remote_cach "s3" {
  bucket = "x"
}

variable "needed" {
}
