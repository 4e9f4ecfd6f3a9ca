#!/bin/sh
# Writes the Dockerflow version.json object on stdout, for /__version__:
#
#   version-json.sh --source URL --version VERSION --commit SHA --build URL > version.json
#
#   source   the repository's URL
#   version  a human version (a tag, a release name); may be empty
#   commit   the git commit hash
#   build    the URL of the CI build that made the image
#
# Each option falls back on the environment variable of the same name in capitals (SOURCE,
# VERSION, COMMIT, BUILD), so a Dockerfile's ARGs work without options; a missing value is
# written as "". Values are escaped as JSON strings (quotes, backslashes, control characters).
# POSIX sh and awk only, so it runs in any CI image and in any build stage.
set -eu

usage() {
  echo "usage: $0 [--source URL] [--version VERSION] [--commit SHA] [--build URL]" >&2
  exit 2
}

SOURCE=${SOURCE-} VERSION=${VERSION-} COMMIT=${COMMIT-} BUILD=${BUILD-}
while [ $# -gt 0 ]; do
  [ $# -ge 2 ] || usage
  case $1 in
    --source) SOURCE=$2 ;;
    --version) VERSION=$2 ;;
    --commit) COMMIT=$2 ;;
    --build) BUILD=$2 ;;
    *) usage ;;
  esac
  shift 2
done
export SOURCE VERSION COMMIT BUILD

# The values reach awk through ENVIRON, never through its command line, so that awk does not
# interpret backslashes in them.
LC_ALL=C awk 'BEGIN {
  for (i = 1; i < 32; i++) escape[sprintf("%c", i)] = sprintf("\\u%04x", i)
  escape["\""] = "\\\""; escape["\\"] = "\\\\"
  escape["\b"] = "\\b"; escape["\f"] = "\\f"; escape["\n"] = "\\n"; escape["\r"] = "\\r"; escape["\t"] = "\\t"
  printf "{"
  n = split("source version commit build", names, " ")
  for (k = 1; k <= n; k++) {
    value = ENVIRON[toupper(names[k])]
    out = ""
    for (i = 1; i <= length(value); i++) {
      c = substr(value, i, 1)
      out = out ((c in escape) ? escape[c] : c)
    }
    printf "%s\"%s\": \"%s\"", (k > 1 ? ", " : ""), names[k], out
  }
  printf "}\n"
}'
