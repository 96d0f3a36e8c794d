#!/bin/sh
echo "$GREETING (host $HOSTNAME)"
cat /app/installed.txt
