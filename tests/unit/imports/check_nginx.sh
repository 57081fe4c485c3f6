#!/bin/sh
curl -fs http://127.0.0.1/ >/dev/null
