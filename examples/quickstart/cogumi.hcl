# The workspace root: settings shared by every package.
workspace {
  name = "quickstart"
}

variable "top" {
  description = "how many words the report lists"
  type        = number
  default     = 5
}
