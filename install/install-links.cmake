# SPDX-License-Identifier: Apache-2.0
cmake_policy(VERSION 3.20)
# Run by `cmake --install` (and CPack's staging install): the links where the CloudStack agent
# and libvirtd look for the tools, and the configuration when there is none yet. Expects the
# GPUH_* variables install/CMakeLists.txt sets; honours DESTDIR and the install prefix. Manifest
# entries are paths on the host, without DESTDIR, as CMake writes its own.
set(D "$ENV{DESTDIR}")
set(libexec "${CMAKE_INSTALL_PREFIX}/${GPUH_LIBEXECDIR}")

function(gpuh_link target link)
  get_filename_component(dir "${D}${link}" DIRECTORY)
  file(MAKE_DIRECTORY "${dir}")
  if(IS_SYMLINK "${D}${link}")
    file(READ_SYMLINK "${D}${link}" old)
    if(old STREQUAL target)
      list(APPEND CMAKE_INSTALL_MANIFEST_FILES "${link}")
      set(CMAKE_INSTALL_MANIFEST_FILES "${CMAKE_INSTALL_MANIFEST_FILES}" PARENT_SCOPE)
      return()
    endif()
  endif()
  if(EXISTS "${D}${link}" OR IS_SYMLINK "${D}${link}")
    message(FATAL_ERROR "${D}${link} exists and is not gpuhooks' (install-state.cmake backs such files up first)")
  endif()
  message(STATUS "Installing: ${D}${link} -> ${target}")
  file(CREATE_LINK "${target}" "${D}${link}" SYMBOLIC)
  list(APPEND CMAKE_INSTALL_MANIFEST_FILES "${link}")
  set(CMAKE_INSTALL_MANIFEST_FILES "${CMAKE_INSTALL_MANIFEST_FILES}" PARENT_SCOPE)
endfunction()

gpuh_link("${libexec}/libvirt-vm-xml-transformer" "${GPUH_CLOUDSTACK_HOOKS_DIR}/libvirt-vm-xml-transformer.sh")
gpuh_link("${libexec}/libvirt-vm-state-change" "${GPUH_CLOUDSTACK_HOOKS_DIR}/libvirt-vm-state-change.sh")
gpuh_link("${libexec}/libvirt-vm-state-change" "${GPUH_LIBVIRT_HOOKS_DIR}/qemu.d/gpuhooks")
gpuh_link("${libexec}/gpudiscovery" "${GPUH_CLOUDSTACK_SCRIPTS_DIR}/gpudiscovery.sh")
# within the prefix: relative (../libexec/gpuhooks/TOOL), as Debian policy 10.5 wants
foreach(tool gpudiscovery libvirt-vm-xml-transformer libvirt-vm-state-change gpuhooksctl)
  file(RELATIVE_PATH rel "${CMAKE_INSTALL_PREFIX}/${GPUH_BINDIR}" "${libexec}/${tool}")
  gpuh_link("${rel}" "${CMAKE_INSTALL_PREFIX}/${GPUH_BINDIR}/${tool}")
endforeach()

# The configuration: an operator's file is never replaced (the package marks it a conffile).
if(NOT EXISTS "${D}${GPUH_CONFDIR}/gpuhooks.json")
  message(STATUS "Installing: ${D}${GPUH_CONFDIR}/gpuhooks.json")
  file(COPY "${GPUH_CONFIG_SOURCE}" DESTINATION "${D}${GPUH_CONFDIR}"
       FILE_PERMISSIONS OWNER_READ OWNER_WRITE GROUP_READ WORLD_READ)
  list(APPEND CMAKE_INSTALL_MANIFEST_FILES "${GPUH_CONFDIR}/gpuhooks.json")
else()
  message(STATUS "Keeping: ${D}${GPUH_CONFDIR}/gpuhooks.json")
endif()

# The reconcile service names the binary by its installed path, known only now (the package
# installs with another prefix than the build was configured with).
set(unit "${D}${GPUH_SYSTEMD_UNIT_DIR}/gpuhooks-reconcile.service")
message(STATUS "Installing: ${unit}")
file(MAKE_DIRECTORY "${D}${GPUH_SYSTEMD_UNIT_DIR}")
file(WRITE "${unit}" "# SPDX-License-Identifier: Apache-2.0
[Unit]
Description=Release the GPUs of domains that stopped without their release finishing (gpuhooks)
Documentation=man:libvirt-vm-state-change(1)
After=libvirtd.service virtqemud.service

[Service]
Type=oneshot
ExecStart=${libexec}/libvirt-vm-state-change reconcile
")
list(APPEND CMAKE_INSTALL_MANIFEST_FILES "${GPUH_SYSTEMD_UNIT_DIR}/gpuhooks-reconcile.service")
