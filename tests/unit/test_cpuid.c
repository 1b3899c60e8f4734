#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>

#include "vmm/cpuid.h"

static struct kvm_cpuid2 *table(void)
{
	struct kvm_cpuid2 *c = calloc(1, sizeof(*c) + 8 * sizeof(struct kvm_cpuid_entry2));
	struct kvm_cpuid_entry2 *e = c->entries;
	e[0] = (struct kvm_cpuid_entry2){.function = 1, .ebx = 0xff00ff08, .edx = 1u << 28};
	e[1] = (struct kvm_cpuid_entry2){
		.function = 0xb, .index = 0, .flags = KVM_CPUID_FLAG_SIGNIFCANT_INDEX};
	e[2] = (struct kvm_cpuid_entry2){
		.function = 0xb, .index = 1, .flags = KVM_CPUID_FLAG_SIGNIFCANT_INDEX};
	e[3] = (struct kvm_cpuid_entry2){.function = 7,
					 .index = 0,
					 .edx = 1u << 29,
					 .flags = KVM_CPUID_FLAG_SIGNIFCANT_INDEX};
	e[4] = (struct kvm_cpuid_entry2){.function = 0x40000000, .eax = 0};
	e[5] = (struct kvm_cpuid_entry2){.function = 0x80000008, .eax = 0x3028, .ecx = 0x0f};
	e[6] = (struct kvm_cpuid_entry2){.function = 4,
					 .index = 0,
					 .eax = 0xfc004121,
					 .flags = KVM_CPUID_FLAG_SIGNIFCANT_INDEX};
	c->nent = 7;
	return c;
}

static void test_topology(void **state)
{
	struct kvm_cpuid2 *sup = table();
	struct cpuid_vm_info vm = {.ncpus = 6};
	struct kvm_cpuid2 *c = cpuid_for_vcpu(sup, &vm, 5);
	struct kvm_cpuid_entry2 *e = cpuid_find(c, 1, 0);
	assert_int_equal(e->ebx >> 24, 5);	    /* initial APIC ID */
	assert_int_equal((e->ebx >> 16) & 0xff, 6); /* logical processors */
	assert_int_equal(e->ebx & 0xffff, 0xff08);  /* CLFLUSH etc. kept */
	assert_true(e->ecx & (1u << 31));	    /* hypervisor */
	assert_true(e->edx & (1u << 28));	    /* HTT: more than one */
	e = cpuid_find(c, 0xb, 1);
	assert_int_equal(e->eax, 3); /* ceil(log2(6)) */
	assert_int_equal(e->ebx, 6);
	assert_int_equal(e->edx, 5);
	assert_int_equal((e->ecx >> 8) & 0xff, 2); /* core level */
	e = cpuid_find(c, 0xb, 0);
	assert_int_equal(e->ebx, 1);
	assert_int_equal(e->edx, 5);
	e = cpuid_find(c, 0x80000008, 0);
	assert_int_equal(e->ecx & 0xff, 5);
	assert_int_equal(e->eax, 0x3028); /* address sizes untouched */
	e = cpuid_find(c, 4, 0);
	assert_int_equal(e->eax >> 26, 5);
	e = cpuid_find(c, 0x40000000, 0);
	assert_true(e->eax >= 0x40000001);
	assert_true(cpuid_find(c, 7, 0)->edx & (1u << 29));  /* kept unless asked */
	assert_false(cpuid_find(c, 1, 0)->ecx & (1u << 24)); /* TSC deadline only if KVM has it */
	free(c);
	vm.tsc_deadline = true;
	c = cpuid_for_vcpu(sup, &vm, 0);
	assert_true(cpuid_find(c, 1, 0)->ecx & (1u << 24));
	free(c);

	vm.ncpus = 1;
	vm.hide_arch_capabilities = true;
	c = cpuid_for_vcpu(sup, &vm, 0);
	assert_false(cpuid_find(c, 1, 0)->edx & (1u << 28));
	assert_false(cpuid_find(c, 7, 0)->edx & (1u << 29));
	free(c);
	free(sup);
}

static void test_id_bits(void **state)
{
	assert_int_equal(cpuid_id_bits(1), 0);
	assert_int_equal(cpuid_id_bits(2), 1);
	assert_int_equal(cpuid_id_bits(4), 2);
	assert_int_equal(cpuid_id_bits(5), 3);
	assert_int_equal(cpuid_id_bits(256), 8);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_topology),
		cmocka_unit_test(test_id_bits),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
