#!/usr/bin/env bash
# An ssh:// Docker engine on this machine for tests/test_engines_e2e.py: sshd on
# 127.0.0.1:2222 with a key of its own, reaching this machine's daemon. Prints the URL;
# prints nothing (exit 0) where it cannot be made (no sshd, no root): the test then skips.
set -u
command -v sshd >/dev/null 2>&1 || [ -x /usr/sbin/sshd ] || exit 0
[ "$(id -u)" = 0 ] || exit 0
key="$HOME/.ssh/afpbisect_test_ed25519"
mkdir -p "$HOME/.ssh" /run/sshd && chmod 700 "$HOME/.ssh"
[ -f "$key" ] || ssh-keygen -q -t ed25519 -N "" -f "$key" || exit 0
grep -qF "$(cat "$key.pub")" "$HOME/.ssh/authorized_keys" 2>/dev/null || cat "$key.pub" >> "$HOME/.ssh/authorized_keys"
chmod 600 "$HOME/.ssh/authorized_keys"
if ! ssh -o BatchMode=yes -o ConnectTimeout=3 -i "$key" -p 2222 root@127.0.0.1 true 2>/dev/null; then
    /usr/sbin/sshd -p 2222 -o ListenAddress=127.0.0.1 -o PermitRootLogin=prohibit-password || exit 0
    ssh-keyscan -p 2222 127.0.0.1 2>/dev/null >> "$HOME/.ssh/known_hosts"
fi
# docker-py's ssh runs plain `ssh -p 2222 -l root 127.0.0.1`: it must find this key itself
grep -q "afpbisect test engine" "$HOME/.ssh/config" 2>/dev/null || printf '# afpbisect test engine\nHost 127.0.0.1\n  IdentityFile %s\n  BatchMode yes\n' "$key" >> "$HOME/.ssh/config"
ssh -o ConnectTimeout=3 -p 2222 root@127.0.0.1 docker version >/dev/null 2>&1 && echo "ssh://root@127.0.0.1:2222"
exit 0
