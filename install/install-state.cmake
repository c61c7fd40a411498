# SPDX-License-Identifier: Apache-2.0
cmake_policy(VERSION 3.20)
# Run by `cmake --install` before anything is installed (component "host", which the package
# leaves out: dpkg keeps its own records and diverts instead). Notes what the install is
# about to change that is not its own, so that the `uninstall` target can put it back:
#  - directories that do not exist yet (removed again by uninstall when empty),
#  - files where the links go that are not ours (CloudStack's gpudiscovery.sh): moved to
#    FILE.gpuhooks-orig, and moved back by uninstall.
# The notes go to PREFIX/LIBEXECDIR/install-state.cmake, listed in the install manifest; being
# CMake code, uninstall reads them only while their SHA-256 is the one install-record.cmake noted.
set(D "$ENV{DESTDIR}")
set(libexec "${CMAKE_INSTALL_PREFIX}/${GPUH_LIBEXECDIR}")
set(state "${D}${libexec}/install-state.cmake")
set(created "")
set(backups "")
set(config "")
if(EXISTS "${state}")
  include("${state}")           # an earlier install's notes stay true
  set(created "${gpuh_created_dirs}")
  set(backups "${gpuh_backups}")
  set(config "${gpuh_config_file}")
endif()
if(NOT EXISTS "${D}${GPUH_CONFDIR}/gpuhooks.json")
  set(config "${GPUH_CONFDIR}/gpuhooks.json")   # install-links.cmake puts the default there
endif()

function(gpuh_note_dirs dir)
  set(missing "")
  while(NOT EXISTS "${D}${dir}" AND NOT dir STREQUAL "/" AND NOT dir STREQUAL "")
    list(PREPEND missing "${dir}")
    get_filename_component(dir "${dir}" DIRECTORY)
  endwhile()
  foreach(m IN LISTS missing)
    if(NOT m IN_LIST created)
      list(APPEND created "${m}")
    endif()
  endforeach()
  set(created "${created}" PARENT_SCOPE)
endfunction()

foreach(dir "${libexec}" "${CMAKE_INSTALL_PREFIX}/${GPUH_BINDIR}" "${CMAKE_INSTALL_PREFIX}/${GPUH_DATADIR}/gpuhooks/schemas"
            "${CMAKE_INSTALL_PREFIX}/${GPUH_DOCDIR}" "${CMAKE_INSTALL_PREFIX}/${GPUH_MANDIR}/man1"
            "${CMAKE_INSTALL_PREFIX}/${GPUH_DATADIR}/lintian/overrides"
            "${GPUH_CONFDIR}" "${GPUH_CLOUDSTACK_HOOKS_DIR}" "${GPUH_CLOUDSTACK_SCRIPTS_DIR}"
            "${GPUH_LIBVIRT_HOOKS_DIR}/qemu.d" "${GPUH_TMPFILES_DIR}" "${GPUH_SYSTEMD_UNIT_DIR}")
  gpuh_note_dirs("${dir}")
endforeach()

# A gpudiscovery.sh (CloudStack's) or hook files that are not ours: kept aside.
foreach(f "${GPUH_CLOUDSTACK_SCRIPTS_DIR}/gpudiscovery.sh"
          "${GPUH_CLOUDSTACK_HOOKS_DIR}/libvirt-vm-xml-transformer.sh"
          "${GPUH_CLOUDSTACK_HOOKS_DIR}/libvirt-vm-state-change.sh"
          "${GPUH_LIBVIRT_HOOKS_DIR}/qemu.d/gpuhooks")
  set(ours FALSE)
  if(IS_SYMLINK "${D}${f}")
    file(READ_SYMLINK "${D}${f}" t)
    string(FIND "${t}" "${libexec}/" at)
    if(at EQUAL 0)
      set(ours TRUE)
    endif()
  endif()
  if(NOT ours AND (EXISTS "${D}${f}" OR IS_SYMLINK "${D}${f}"))
    message(STATUS "Keeping aside: ${D}${f} -> ${D}${f}.gpuhooks-orig")
    file(RENAME "${D}${f}" "${D}${f}.gpuhooks-orig")
    if(NOT f IN_LIST backups)
      list(APPEND backups "${f}")
    endif()
  endif()
endforeach()

file(MAKE_DIRECTORY "${D}${libexec}")
list(JOIN created ";" created_s)
list(JOIN backups ";" backups_s)
file(WRITE "${state}" "# written by gpuhooks' install: what uninstall puts back\nset(gpuh_destdir \"${D}\")\nset(gpuh_created_dirs \"${created_s}\")\nset(gpuh_backups \"${backups_s}\")\nset(gpuh_config_file \"${config}\")\n")
list(APPEND CMAKE_INSTALL_MANIFEST_FILES "${libexec}/install-state.cmake")
