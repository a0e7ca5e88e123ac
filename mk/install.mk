# make install: included from the main Makefile ("include mk/install.mk").
#
#   make install [PREFIX=/usr/local] [DESTDIR=]
#
# Layout (FHS; man sections follow the directories):
#   $(SBINDIR)         cloudd deviced             daemons, man section 8
#   $(BINDIR)          dcctl dccl-data dccl-probe user/admin tools, section 1
#   $(MANDIR)/man{1,5,8}
#   $(UNITDIR)         dccl-cloudd.service dccl-deviced@.service
#   $(SYSUSERSDIR)     dccl.conf (the "dccl" system user)
#   $(SYSCONFDIR)/dccl cloudd.conf deviced/example.conf deviced-{low,mid,high}.conf
#
# Configuration always goes to /etc (not $(PREFIX)/etc): the units read
# /etc/dccl, and a /usr/local install is still configured in /etc. Existing
# configuration files are never overwritten (an admin's edits survive a
# reinstall); a fresh copy is written next to them as FILE.dist.
#
# PREFIX=/usr puts units in /lib/systemd/system (Debian's
# systemdsystemunitdir) and sysusers in /usr/lib/sysusers.d; any other
# prefix uses $(PREFIX)/lib/..., which systemd also searches for
# /usr/local. The units' ExecStart= paths are rewritten to $(SBINDIR).
#
# Depends on the main Makefile's $(BIN) (where the built programs are) and
# builds "all" first. Nothing here runs systemctl or systemd-sysusers:
# DESTDIR installs must stay side-effect free (packagers run them in
# postinst; see cloudd(8)).

PREFIX	?= /usr/local
DESTDIR	?=
BINDIR	?= $(PREFIX)/bin
SBINDIR	?= $(PREFIX)/sbin
MANDIR	?= $(PREFIX)/share/man
SYSCONFDIR ?= /etc
ifeq ($(PREFIX),/usr)
UNITDIR	?= /lib/systemd/system
else
UNITDIR	?= $(PREFIX)/lib/systemd/system
endif
SYSUSERSDIR ?= $(PREFIX)/lib/sysusers.d
INSTALL	?= install

INST_SBIN  := cloudd deviced
INST_BIN   := dcctl dccl-data dccl-probe
INST_MAN1  := man/dcctl.1
INST_MAN5  := man/dccl.conf.5
INST_MAN8  := man/cloudd.8 man/deviced.8
INST_UNITS := conf/systemd/dccl-cloudd.service conf/systemd/dccl-deviced@.service
INST_CLASS := conf/deviced-low.conf conf/deviced-mid.conf conf/deviced-high.conf

# install_conf SRC DST: copy unless DST exists; then write DST.dist instead.
install_conf = if [ -e "$(2)" ]; then \
		$(INSTALL) -m 0644 "$(1)" "$(2).dist"; \
		echo "install: kept $(2); new version in $(2).dist"; \
	else $(INSTALL) -m 0644 "$(1)" "$(2)"; fi

.PHONY: install uninstall

install: all
	$(INSTALL) -d "$(DESTDIR)$(SBINDIR)" "$(DESTDIR)$(BINDIR)" \
	    "$(DESTDIR)$(MANDIR)/man1" "$(DESTDIR)$(MANDIR)/man5" \
	    "$(DESTDIR)$(MANDIR)/man8" "$(DESTDIR)$(UNITDIR)" \
	    "$(DESTDIR)$(SYSUSERSDIR)" "$(DESTDIR)$(SYSCONFDIR)/dccl/deviced"
	$(INSTALL) -m 0755 $(addprefix $(BIN)/,$(INST_SBIN)) "$(DESTDIR)$(SBINDIR)"
	$(INSTALL) -m 0755 $(addprefix $(BIN)/,$(INST_BIN)) "$(DESTDIR)$(BINDIR)"
	$(INSTALL) -m 0644 $(INST_MAN1) "$(DESTDIR)$(MANDIR)/man1"
	$(INSTALL) -m 0644 $(INST_MAN5) "$(DESTDIR)$(MANDIR)/man5"
	$(INSTALL) -m 0644 $(INST_MAN8) "$(DESTDIR)$(MANDIR)/man8"
	for u in $(INST_UNITS); do \
		sed 's|/usr/local/sbin/|$(SBINDIR)/|' "$$u" >"$(DESTDIR)$(UNITDIR)/$${u##*/}" && \
		chmod 0644 "$(DESTDIR)$(UNITDIR)/$${u##*/}" || exit 1; \
	done
	$(INSTALL) -m 0644 conf/systemd/dccl.sysusers.conf "$(DESTDIR)$(SYSUSERSDIR)/dccl.conf"
	@$(call install_conf,conf/cloudd.conf,$(DESTDIR)$(SYSCONFDIR)/dccl/cloudd.conf)
	@$(call install_conf,conf/deviced.conf,$(DESTDIR)$(SYSCONFDIR)/dccl/deviced/example.conf)
	@for f in $(INST_CLASS); do \
		$(call install_conf,$$f,$(DESTDIR)$(SYSCONFDIR)/dccl/$${f##*/}) || exit 1; \
	done

uninstall:
	rm -f $(addprefix "$(DESTDIR)$(SBINDIR)"/,$(INST_SBIN)) \
	    $(addprefix "$(DESTDIR)$(BINDIR)"/,$(INST_BIN)) \
	    "$(DESTDIR)$(MANDIR)/man1/dcctl.1" "$(DESTDIR)$(MANDIR)/man5/dccl.conf.5" \
	    "$(DESTDIR)$(MANDIR)/man8/cloudd.8" "$(DESTDIR)$(MANDIR)/man8/deviced.8" \
	    "$(DESTDIR)$(UNITDIR)/dccl-cloudd.service" \
	    "$(DESTDIR)$(UNITDIR)/dccl-deviced@.service" \
	    "$(DESTDIR)$(SYSUSERSDIR)/dccl.conf"
	@echo "uninstall: left $(DESTDIR)$(SYSCONFDIR)/dccl and /var/lib/dccl in place"

# Regenerates man/dccl.conf.5 from the option tables (see man/gen-conf-man.sh).
.PHONY: man
man: $(BIN)/cloudd $(BIN)/deviced
	sh man/gen-conf-man.sh $(BIN) >man/dccl.conf.5.tmp
	mv man/dccl.conf.5.tmp man/dccl.conf.5
