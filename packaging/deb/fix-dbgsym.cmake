# CPack post-build script (CPACK_POST_BUILD_SCRIPTS): mends the -dbgsym
# .ddeb that CMake 3.25's DEB generator makes. Its md5sums names each file
# by its path in the build tree instead of its path in the package, its
# .debug files are executable, and it has no /usr/share/doc entry; as
# debhelper does for the dbgsym packages it makes, the package's doc
# directory becomes a link to the main package's (which holds copyright and
# changelog). The .ddeb is unpacked, mended and built again with dpkg-deb.
foreach(file ${CPACK_PACKAGE_FILES})
	if(NOT file MATCHES "\\.ddeb$")
		continue()
	endif()
	set(dir ${CPACK_TOPLEVEL_DIRECTORY}/dbgsym-fix)
	file(REMOVE_RECURSE ${dir})
	execute_process(COMMAND dpkg-deb -R ${file} ${dir} RESULT_VARIABLE rc)
	if(NOT rc EQUAL 0)
		message(FATAL_ERROR "dpkg-deb -R ${file} failed")
	endif()
	file(READ ${dir}/DEBIAN/md5sums sums)
	string(REGEX REPLACE "  [^\n]*/usr/lib/debug/" "  usr/lib/debug/" sums "${sums}")
	file(WRITE ${dir}/DEBIAN/md5sums "${sums}")
	file(GLOB_RECURSE debug_files ${dir}/usr/lib/debug/*.debug)
	foreach(f ${debug_files})
		file(CHMOD ${f} PERMISSIONS OWNER_READ OWNER_WRITE GROUP_READ WORLD_READ)
	endforeach()
	file(MAKE_DIRECTORY ${dir}/usr/share/doc)
	file(CREATE_LINK ${CPACK_PACKAGE_NAME} ${dir}/usr/share/doc/${CPACK_PACKAGE_NAME}-dbgsym
		SYMBOLIC)
	execute_process(COMMAND dpkg-deb --root-owner-group -b ${dir} ${file}
		OUTPUT_QUIET RESULT_VARIABLE rc)
	if(NOT rc EQUAL 0)
		message(FATAL_ERROR "dpkg-deb -b ${dir} failed")
	endif()
	file(REMOVE_RECURSE ${dir})
endforeach()
