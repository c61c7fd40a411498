# SPDX-License-Identifier: Apache-2.0
cmake_policy(VERSION 3.20)
# Run by `cmake --install` after everything else (component "host", and only by a whole
# install: the record goes with build/install_manifest.txt, which only such an install writes).
# Writes GPUH_INSTALL_RECORD for the `uninstall` target: the root the install went under
# (DESTDIR, see install-root.cmake) and what it put at each manifest path, the SHA-256 of a
# regular file's content or the target of a symbolic link, so that uninstall removes nothing
# under another root and nothing that changed since. Expects the GPUH_* variables
# install/CMakeLists.txt sets.
if(CMAKE_INSTALL_COMPONENT)
  return()
endif()
include("${CMAKE_CURRENT_LIST_DIR}/install-root.cmake")
gpuh_install_root("$ENV{DESTDIR}" root)

set(out "# written by gpuhooks' install (install/install-record.cmake): what uninstall may remove\n")
string(APPEND out "set(gpuh_installed_root [==[${root}]==])\n")
foreach(f IN LISTS CMAKE_INSTALL_MANIFEST_FILES)
  if("${root}${f}" MATCHES "]==]")
    message(FATAL_ERROR " ${root}${f}: a path with ']==]' in it cannot be recorded for uninstall")
  endif()
  if(IS_SYMLINK "${root}${f}")
    file(READ_SYMLINK "${root}${f}" target)
    if(target MATCHES "]==]")
      message(FATAL_ERROR " ${root}${f} -> ${target}: a target with ']==]' in it cannot be recorded for uninstall")
    endif()
    string(APPEND out "gpuh_installed(link [==[${f}]==] [==[${target}]==])\n")
  elseif(EXISTS "${root}${f}" AND NOT IS_DIRECTORY "${root}${f}")
    file(SHA256 "${root}${f}" sum)
    string(APPEND out "gpuh_installed(file [==[${f}]==] ${sum})\n")
  endif()
endforeach()
# what an unchanged configuration holds (an earlier install's, which this one kept, included)
file(SHA256 "${GPUH_CONFIG_SOURCE}" sum)
string(APPEND out "set(gpuh_installed_default_config ${sum})\n")
file(WRITE "${GPUH_INSTALL_RECORD}.new" "${out}")
file(RENAME "${GPUH_INSTALL_RECORD}.new" "${GPUH_INSTALL_RECORD}")
