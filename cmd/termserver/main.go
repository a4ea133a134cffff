// Command termserver is the project's reference server.
package main

func main() {}
