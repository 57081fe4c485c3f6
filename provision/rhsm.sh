# Red Hat Subscription Management for image.sh (RHEL only); sourced, not run.
# RHSM_USERNAME / RHSM_PASSWORD come from the environment and never become an argument of
# any process: `subscription-manager register --password` would show the password to every
# user in `ps` (and in the audit log). subscription-manager's own service takes credentials
# over D-Bus instead, on a private socket it opens for the purpose (com.redhat.RHSM1
# RegisterServer, then Register: what Anaconda, Cockpit and Ansible's redhat_subscription
# use); a python reads them from the environment and calls it.

# rhsm_python: RHEL 8 keeps the python subscription-manager (and its dbus module) runs on
# apart from any python3 a user installs.
rhsm_python() {
    if [ -x /usr/libexec/platform-python ]; then echo /usr/libexec/platform-python; else echo python3; fi
}

# rhsm_register: register, enable CodeReady Builder (the build deps), and drop the
# credentials from the environment so that no build step inherits them.
rhsm_register() {
    step "registering with Red Hat Subscription Management (unregistered at the end)"
    "$(rhsm_python)" - <<'PY'
import os
import sys

import dbus

LOCALE = ""  # the service's own messages, untranslated
SERVER = ("com.redhat.RHSM1", "/com/redhat/RHSM1/RegisterServer")
server = dbus.SystemBus().get_object(*SERVER)
address = server.Start(LOCALE, dbus_interface="com.redhat.RHSM1.RegisterServer")
try:
    dbus.connection.Connection(address).call_blocking(
        "com.redhat.RHSM1",
        "/com/redhat/RHSM1/Register",
        "com.redhat.RHSM1.Register",
        "Register",
        "sssa{sv}a{sv}s",
        # organization "": the account's only one (an account in several must say which)
        ("", os.environ["RHSM_USERNAME"], os.environ["RHSM_PASSWORD"],
         dbus.Dictionary({}, signature="sv"), dbus.Dictionary({}, signature="sv"), LOCALE),
        timeout=600,
    )
except dbus.exceptions.DBusException as error:
    sys.exit(f"registering with Red Hat Subscription Management failed: {error.get_dbus_message()}")
finally:
    server.Stop(LOCALE, dbus_interface="com.redhat.RHSM1.RegisterServer")
PY
    unset RHSM_USERNAME RHSM_PASSWORD
    # D-Bus registration is registration only: fetch the certificates and repo file, then
    # attach (a Simple Content Access account has nothing to attach, and recent versions
    # refuse to: no error of this step counts; the repos step fails if there is no content).
    subscription-manager refresh >/dev/null
    subscription-manager attach --auto >/dev/null 2>&1 || true
    subscription-manager repos --enable "codeready-builder-for-rhel-$(rpm -E %rhel)-x86_64-rpms" >/dev/null
}

rhsm_unregister() { subscription-manager unregister >/dev/null; }
